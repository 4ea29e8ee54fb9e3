import { parseArgs, type ParseArgsConfig } from 'util';
import { UsageError } from './errors';

/**
 * Command-line options with their environment twins, as tables: one entry holds what the
 * option is called, where else its value may come from, its default and its help, so that
 * parsing, `--help` and the README's table (a test compares them) say the same.
 */
export interface Flag {
  /** The option without its dashes: `host` for `--host`. */
  readonly name: string;
  /** The value's name in the help (`H`, `URL`); none: a switch, on when given. */
  readonly arg?: string;
  /** A one-letter alias (`-h`). */
  readonly short?: string;
  /** May be given more than once; its variable then holds the values separated by commas. */
  readonly multiple?: boolean;
  /**
   * Variables read, in order, when the option is not given. A switch's variable is `1`,
   * `true`, `yes` or `on` for on, `0`, `false`, `no`, `off` or empty for off.
   */
  readonly env?: readonly string[];
  /** The default as help shows it (its effect is in the code that reads the value). */
  readonly default?: string;
  /** One line: what it does (help's first words and the README table's). */
  readonly summary: string;
  /** More for the help, if any. */
  readonly details?: string;
}

/** Where a value came from: `--host`, or the variable that gave it. */
export type Source = string;

/** Values of a table's options, each with where it came from. */
export class FlagValues {
  constructor(
    private readonly values: ReadonlyMap<
      string,
      { value: string | boolean | readonly string[]; from: Source }
    >,
  ) {}

  /** The values of an option given more than once (`multiple`), none if not given. */
  strings(name: string): readonly string[] {
    const v = this.values.get(name)?.value;
    if (Array.isArray(v)) return v as readonly string[];
    return typeof v === 'string' ? [v] : [];
  }

  /** The option's text, if given (by flag or variable). */
  string(name: string): string | undefined {
    const v = this.values.get(name)?.value;
    return typeof v === 'string' ? v : undefined;
  }

  /** Whether a switch is on. */
  on(name: string): boolean {
    return this.values.get(name)?.value === true;
  }

  /** Whether the option was given at all (a switch: also when turned off by its variable). */
  given(name: string): boolean {
    const v = this.values.get(name)?.value;
    return v !== undefined && v !== false;
  }

  /** `--name`, or the variable its value came from: what an error about the value names. */
  from(name: string): Source {
    return this.values.get(name)?.from ?? `--${name}`;
  }
}

const ON = ['1', 'true', 'yes', 'on'];
const OFF = ['0', 'false', 'no', 'off', ''];

/** parseArgs' options for a table. */
export function argsConfig(flags: readonly Flag[]): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {};
  for (const f of flags) {
    options[f.name] = {
      type: f.arg ? 'string' : 'boolean',
      ...(f.short ? { short: f.short } : {}),
      ...(f.multiple ? { multiple: true } : {}),
    };
  }
  return options;
}

/**
 * Reads `argv` against the table, then the variables of the options not given: a flag wins
 * over its variables, the first variable set wins over the next. No positional arguments.
 */
export function readFlags(
  flags: readonly Flag[],
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): FlagValues {
  const { values } = parseArgs({
    args: [...argv],
    options: argsConfig(flags),
    strict: true,
    allowPositionals: false,
  });
  const read = new Map<string, { value: string | boolean | readonly string[]; from: Source }>();
  for (const f of flags) {
    const given = values[f.name];
    if (typeof given === 'string' || typeof given === 'boolean' || Array.isArray(given)) {
      read.set(f.name, { value: given as string | boolean | string[], from: `--${f.name}` });
      continue;
    }
    for (const name of f.env ?? []) {
      const text = env[name];
      if (text === undefined || (f.arg && text === '')) continue;
      if (f.arg && f.multiple) {
        const list = text
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean);
        read.set(f.name, { value: list, from: name });
      } else if (f.arg) {
        read.set(f.name, { value: text, from: name });
      } else {
        const t = text.trim().toLowerCase();
        if (!ON.includes(t) && !OFF.includes(t))
          throw new UsageError(
            `${name} must be 1 or 0 (true/false, yes/no, on/off), not "${text}"`,
          );
        read.set(f.name, { value: ON.includes(t), from: name });
      }
      break;
    }
  }
  return new FlagValues(read);
}

/** The first line of a help entry: `--name ARG`. */
export const flagUsage = (f: Flag): string =>
  `${f.short ? `-${f.short}, ` : ''}--${f.name}${f.arg ? ` ${f.arg}` : ''}`;

/** Where --help and the README say the value also comes from, and the default. */
export function flagFacts(f: Flag): string {
  const vars = f.env?.length ? f.env.join(', ') : '';
  const dflt = f.default !== undefined ? `default ${f.default}` : '';
  return [vars, dflt].filter(Boolean).join('; ');
}

/** The details as they follow the summary: after a space unless they go on with punctuation. */
const detailsOf = (f: Flag): string =>
  f.details ? `${/^[:;,.]/.test(f.details) ? '' : ' '}${f.details}` : '';

const HELP_COLUMN = 21;
const HELP_WIDTH = 94;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * The table as --help lists it: per option its usage, its summary and details wrapped in the
 * column, and a last line `[VARIABLE, ...; default X]` when it has either.
 */
export function flagsHelp(flags: readonly Flag[]): string {
  const pad = ' '.repeat(HELP_COLUMN);
  const out: string[] = [];
  for (const f of flags) {
    const head = `  ${flagUsage(f)}`;
    const text = wrap(`${f.summary}${detailsOf(f)}`, HELP_WIDTH - HELP_COLUMN);
    const facts = flagFacts(f);
    if (facts) text.push(`[${facts}]`);
    if (head.length < HELP_COLUMN - 1) {
      out.push(`${head.padEnd(HELP_COLUMN)}${text[0] ?? ''}`);
      out.push(...text.slice(1).map((l) => `${pad}${l}`));
    } else {
      out.push(head, ...text.map((l) => `${pad}${l}`));
    }
  }
  return out.join('\n');
}

/** The README's table of a command's options (markdown; prettier aligns it in the README). */
export function flagsMarkdown(flags: readonly Flag[]): string {
  const code = (s: string): string => `\`${s}\``;
  const rows = flags.map(
    (f) =>
      `| ${code(flagUsage(f))} | ${(f.env ?? []).map(code).join(', ')} | ` +
      `${f.default !== undefined ? code(f.default) : ''} | ${f.summary} |`,
  );
  return ['| option | variable | default | meaning |', '| --- | --- | --- | --- |', ...rows].join(
    '\n',
  );
}
