import fs from 'fs';
import Module, { createRequire } from 'module';
import path from 'path';
import vm from 'vm';

/**
 * futoin-executor's NodeExecutor freezes Object.prototype when it is constructed
 * (`secureObjectPrototype`, its guard against prototype pollution), for the whole process. A
 * library loaded after that fails to load if its strict code assigns a method that
 * Object.prototype also has to a prototype of its own (`Long.prototype.toString = ...`): the
 * inherited property is read-only now. `long` (mysql2's) and `moment` (futoin-database's) do.
 * This loads such a library anyway, so that no load order of an application breaks us.
 */

export const isPrototypeFrozen = (): boolean => Object.isFrozen(Object.prototype);

/** The TypeError strict code gets for such an assignment. */
export const isFrozenAssignment = (err: unknown): boolean =>
  err instanceof TypeError && /Cannot assign to read only property/.test(err.message);

/**
 * Makes CommonJS module `id`, as code in the file `fromFile` resolves it, loaded, also when
 * Object.prototype is frozen already. Without the freeze, or when the module loads in spite of
 * it, this is a plain require. Otherwise the module's code runs in a realm of its own (a fresh
 * `vm` context, whose Object.prototype is its own and not frozen) and goes into the require
 * cache, so every later `require(id)` gets it. Fit for self-contained modules that require
 * nothing themselves and hand back plain values (long's strings, moment's formatted dates):
 * objects made there have that realm's prototypes, so `instanceof Object` is false for them.
 */
export function loadDespiteFrozenPrototype(id: string, fromFile: string): void {
  const req = createRequire(fromFile);
  if (!isPrototypeFrozen()) {
    req(id);
    return;
  }
  const filename = req.resolve(id);
  if (req.cache[filename]) return;
  try {
    req(id);
    return;
  } catch (err) {
    // A module that throws while loading leaves the cache again.
    if (!isFrozenAssignment(err)) throw err;
  }
  const source = fs.readFileSync(filename, 'utf8');
  const wrapper = vm.runInNewContext(
    `(function (exports, require, module, __filename, __dirname) {${source}\n})`,
    {},
    { filename },
  ) as (
    exports: unknown,
    require: NodeJS.Require,
    module: Module,
    filename: string,
    dirname: string,
  ) => void;
  const mod = new Module(filename);
  mod.filename = filename;
  wrapper.call(
    mod.exports,
    mod.exports,
    createRequire(filename),
    mod,
    filename,
    path.dirname(filename),
  );
  mod.loaded = true;
  req.cache[filename] = mod;
}
