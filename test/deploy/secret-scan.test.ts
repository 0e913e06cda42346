// The secret scan of .ci/run and CI, `npm run secrets:scan` (secretlint with the recommended preset and
// our PostgreSQL URL rule, scripts/secretlint-rule-database-url.js): the repository passes it, and secrets
// planted in a temporary directory fail it — private keys generated here (never committed), a database
// password, a GitHub token — while the placeholders our docs, examples and compose files use do not.
import { generateKeyPairSync, randomInt } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CommandResult, makeTempDir, REPO_ROOT, removeTempDir, run } from '../helpers/process.ts';

const CONFIG = join(REPO_ROOT, '.secretlintrc.json');

/** `npm run secrets:scan` in the repository, with `args` appended to the secretlint command line. */
function secretsScan(args: string[] = []): Promise<CommandResult> {
  return run('npm', ['run', '--silent', 'secrets:scan', '--', ...args], { timeoutMs: 120_000 });
}

interface Finding {
  file: string;
  line: number;
  rule: string;
  message: string;
}

interface SecretlintFile {
  filePath: string;
  messages: { ruleId: string; messageId: string; message: string; loc: { start: { line: number } } }[];
}

/**
 * The same scan on the files under `dir` instead of the repository, with the repository's configuration:
 * secretlint's --cwd moves its search there. Findings come sorted by file, rules as "ruleId/messageId";
 * `scanned` lists every file the scan read, so that a scan of nothing cannot pass for a clean one.
 */
async function scanDirectory(
  dir: string,
): Promise<{ code: number | null; findings: Finding[]; scanned: string[] }> {
  const { code, stdout, stderr } = await secretsScan([
    '--cwd',
    dir,
    '--secretlintrc',
    CONFIG,
    '--format',
    'json',
  ]);
  let files: SecretlintFile[];
  try {
    files = JSON.parse(stdout) as SecretlintFile[];
  } catch {
    throw new Error(`secretlint printed no JSON report (exit ${code}):\n${stdout}${stderr}`);
  }
  const findings = files.flatMap((file) =>
    file.messages.map((message) => ({
      file: relative(dir, file.filePath),
      line: message.loc.start.line,
      rule: `${message.ruleId}/${message.messageId}`,
      message: message.message,
    })),
  );
  return {
    code,
    findings: findings.sort((a, b) => a.file.localeCompare(b.file)),
    scanned: files.map((file) => relative(dir, file.filePath)).sort(),
  };
}

const PRIVATE_KEY_RULE = '@secretlint/secretlint-rule-privatekey/PrivateKey';
const DATABASE_URL_RULE = 'secretlint-rule-database-url/DATABASE_URL_PASSWORD';

const PUBLIC_PEM = { type: 'spki', format: 'pem' } as const;
const rsaPrivateKeyPem = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: PUBLIC_PEM,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  }).privateKey;
const ecPrivateKeyPem = () =>
  generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: PUBLIC_PEM,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  }).privateKey;

/** A PostgreSQL URL with a real-looking password, put together at run time so that this file holds none. */
const urlWithPassword = (user: string, password: string, rest: string, scheme = 'postgres') =>
  `${scheme}://${user}:${password}@${rest}`;

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const randomAlphanumeric = (length: number) =>
  Array.from({ length }, () => ALPHANUMERIC[randomInt(ALPHANUMERIC.length)]).join('');

describe('secret scan', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('branch-loans-secrets-');
  });
  afterEach(() => removeTempDir(dir));

  const plant = async (files: Record<string, string>) => {
    for (const [path, content] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), content);
    }
  };

  it('finds nothing in the repository: npm run secrets:scan exits 0 and prints nothing', async () => {
    expect(await secretsScan()).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('fails on freshly generated RSA and EC private keys and names both files', async () => {
    await plant({ 'deploy/tls/server.key': rsaPrivateKeyPem(), id_ecdsa: ecPrivateKeyPem() });
    const { code, findings } = await scanDirectory(dir);
    expect(code).toBe(1);
    expect(findings.map(({ message: _, ...where }) => where)).toEqual([
      { file: 'deploy/tls/server.key', line: 1, rule: PRIVATE_KEY_RULE },
      { file: 'id_ecdsa', line: 1, rule: PRIVATE_KEY_RULE },
    ]);
  });

  it("fails on a password in a PostgreSQL URL with our rule's message, the password masked", async () => {
    const url = urlWithPassword('branch', 'S3cr3t-Pa55w0rd', 'db:5432/branch_loans');
    await plant({ 'app.env': `APP_ENV=production\nDATABASE_URL=${url}\n` });
    const { code, findings } = await scanDirectory(dir);
    expect(code).toBe(1);
    expect(findings).toEqual([
      {
        file: 'app.env',
        line: 2,
        rule: DATABASE_URL_RULE,
        message:
          'found a password in a PostgreSQL URL: *************** (use a placeholder such as ${POSTGRES_PASSWORD}, or DATABASE_URL_FILE)',
      },
    ]);
  });

  it('reports a real password once, whatever the spelling of the URL around it', async () => {
    await plant({
      'postgresql.txt': urlWithPassword('app', 'hunter2hunter2', '10.0.0.5/loans', 'postgresql'),
      'percent-encoded.txt': urlWithPassword('app', 'p%40ss-w0rd-2026', 'db/x'),
      'upper-case.txt': urlWithPassword('app', 'Zq8vLr2mXwq', 'db/x', 'POSTGRES'),
      // A dotted host would also match the preset's basic-auth rule, which leaves PostgreSQL URLs to ours.
      'quoted.json': JSON.stringify({ url: urlWithPassword('app', 'Zq8vLr2mXwq', 'db.internal:5432/x') }),
    });
    const { code, findings } = await scanDirectory(dir);
    expect(code).toBe(1);
    expect(findings.map(({ file, rule }) => ({ file, rule }))).toEqual([
      { file: 'percent-encoded.txt', rule: DATABASE_URL_RULE },
      { file: 'postgresql.txt', rule: DATABASE_URL_RULE },
      { file: 'quoted.json', rule: DATABASE_URL_RULE },
      { file: 'upper-case.txt', rule: DATABASE_URL_RULE },
    ]);
  });

  it('passes the placeholders that stand in for database passwords', async () => {
    const placeholders = [
      'postgres://branch:${POSTGRES_PASSWORD}@db:5432/branch_loans',
      'postgres://branch:${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env.dev}@db:5432/branch_loans',
      'postgres://app:$PGPASSWORD@db/x',
      'postgres://app:{{password}}@db/x',
      'postgres://postgres@127.0.0.1:5432/postgres',
      'postgres://app:@db/x',
      'postgres://user:password@host:5432/db',
      'postgres://user:<password>@host:5432/db',
      'postgres://branch:change-me@127.0.0.1:5432/branch_loans',
      'postgres://app:********@db/x',
      'postgres://app:[redacted]@db:5432/loans',
      'printf \'postgres://branch:%s@db:5432/branch_loans\' "$(cat postgres_password)"',
      'postgres://app:s3cret@db:5432/loans',
    ];
    const files = placeholders.map((_, index) => `example-${String(index).padStart(2, '0')}.txt`);
    await plant(Object.fromEntries(placeholders.map((url, index) => [files[index]!, `${url}\n`])));
    expect(await scanDirectory(dir)).toEqual({ code: 0, findings: [], scanned: files });
  });

  it('fails on a GitHub token (the recommended preset)', async () => {
    await plant({ 'ci.env': `GITHUB_TOKEN=ghp_${randomAlphanumeric(36)}\n` });
    const { code, findings } = await scanDirectory(dir);
    expect(code).toBe(1);
    expect(findings.map(({ file, line, rule }) => ({ file, line, rule }))).toEqual([
      { file: 'ci.env', line: 1, rule: '@secretlint/secretlint-rule-github/GITHUB_TOKEN' },
    ]);
  });
});
