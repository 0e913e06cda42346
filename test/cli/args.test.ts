import { afterEach, describe, expect, it, vi } from 'vitest';
import { argsOrExit, integerArg, parseArgs, UsageError } from '../../src/cli/args.ts';

const OPTIONS = {
  loans: { type: 'string' },
  'database-url': { type: 'string' },
  fresh: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

describe('parseArgs', () => {
  it.each([
    [[], {}],
    [['--loans', '7'], { loans: '7' }],
    [
      ['--loans=7', '--database-url=postgres://h/db?x=1'],
      { loans: '7', 'database-url': 'postgres://h/db?x=1' },
    ],
    [['--fresh', '-h'], { fresh: true, help: true }],
    [['--loans', '1', '--loans', '2'], { loans: '2' }],
    // A value may start with a dash; the command then says what is wrong with it.
    [['--loans', '-5'], { loans: '-5' }],
  ])('reads %j as %j', (argv, expected) => {
    expect(parseArgs(argv, OPTIONS)).toEqual(expected);
  });

  it.each([
    [['--lons', '5'], 'unknown argument "--lons"'],
    [['--lons=5'], 'unknown argument "--lons=5"'],
    [['extra'], 'unknown argument "extra"'],
    [['--fresh', 'extra'], 'unknown argument "extra"'],
    [['-hx'], 'unknown argument "-hx"'],
    [['--', '--loans', '5'], 'unknown argument "--"'],
    [['--loans'], '--loans needs a value'],
    [['--loans='], '--loans needs a value'],
    [['--fresh=yes'], '--fresh takes no value'],
  ])('refuses %j: %s', (argv, message) => {
    expect(() => parseArgs(argv, OPTIONS)).toThrow(new UsageError(message));
  });

  it('reports the first problem in the order the arguments were typed', () => {
    expect(() => parseArgs(['extra', '--lons'], OPTIONS)).toThrow('unknown argument "extra"');
  });
});

describe('integerArg', () => {
  it.each([
    ['1', 1],
    ['42', 42],
    ['100', 100],
  ])('reads %s as %d', (text, value) => {
    expect(integerArg('--n', text, 1, 100)).toBe(value);
  });

  it.each(['0', '101', '-5', '1.5', '1e3', ' 7', 'abc', ''])('refuses "%s"', (text) => {
    expect(() => integerArg('--n', text, 1, 100)).toThrow(
      new UsageError(`--n must be an integer from 1 to 100 (got "${text}")`),
    );
  });
});

describe('argsOrExit', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('returns what the parser returns', () => {
    expect(argsOrExit('seed', 'usage: x', () => ({ loans: 3 }))).toEqual({ loans: 3 });
  });

  it('prints "command: problem; usage" on stderr and exits with 2 on a usage error', () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    expect(() => argsOrExit('seed', 'usage: npm run db:seed', () => parseArgs(['--bogus'], OPTIONS))).toThrow(
      'exit 2',
    );
    expect(error.mock.calls).toEqual([['seed: unknown argument "--bogus"; usage: npm run db:seed']]);
    expect(exit).toHaveBeenCalledTimes(1);
  });

  it('lets any other error through', () => {
    const exit = vi.spyOn(process, 'exit');
    expect(() =>
      argsOrExit('seed', 'usage', () => {
        throw new RangeError('a bug');
      }),
    ).toThrow(RangeError);
    expect(exit).not.toHaveBeenCalled();
  });
});
