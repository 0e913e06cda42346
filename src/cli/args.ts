// The commands' one argument parser: Node's util.parseArgs, with messages that quote the argument
// as it was typed.
import { parseArgs as parseNodeArgs } from 'node:util';

/** A command line that cannot be run: the command prints the message and its usage, and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

export type ArgValues<T extends Record<string, OptionSpec>> = {
  [K in keyof T]?: T[K]['type'] extends 'string' ? string : boolean;
};

/**
 * `--name value`, `--name=value` and the declared short flags; the last of a repeated option wins.
 * Anything else — an unknown option, a positional argument, an option without its value — is a UsageError.
 */
export function parseArgs<const T extends Record<string, OptionSpec>>(
  argv: readonly string[],
  options: T,
): ArgValues<T> {
  // Not strict: util.parseArgs's own errors do not say which argument was wrong in our words.
  const { tokens } = parseNodeArgs({
    args: [...argv],
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const values: Record<string, string | boolean> = {};
  for (const token of tokens) {
    const spec =
      token.kind === 'option' && Object.hasOwn(options, token.name)
        ? (options as Record<string, OptionSpec>)[token.name]
        : undefined;
    if (token.kind !== 'option' || spec === undefined) {
      throw new UsageError(`unknown argument "${argv[token.index]}"`);
    }
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`);
      values[token.name] = true;
    } else {
      if (!token.value) throw new UsageError(`${token.rawName} needs a value`);
      values[token.name] = token.value;
    }
  }
  return values as ArgValues<T>;
}

/** `text` as an integer from `min` to `max`. */
export function integerArg(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max} (got "${text}")`);
  }
  return value;
}

/** What `parse` returns; on a UsageError, `command: problem; usage` on stderr and exit code 2. */
export function argsOrExit<T>(command: string, usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${command}: ${error.message}; ${usage}`);
    process.exit(2);
  }
}
