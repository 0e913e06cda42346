// secretlint rule: a password inside a PostgreSQL connection URL. The recommended preset only knows basic
// auth on dotted host names, so `postgres://app:…@db:5432/x` (a compose service name) slips through it.
// This rule owns every PostgreSQL URL: .secretlintrc.json tells the preset's basic-auth rule to leave them
// alone, so a placeholder such as `branch:change-me@127.0.0.1` is judged by the rules below only.
//
// Loaded as "secretlint-rule-database-url" from .secretlintrc.json: secretlint 9 resolves rule ids as
// package names only, so `npm run secrets:scan` puts this directory on NODE_PATH.
//
// Reported: postgres://USER:PASSWORD@… (or postgresql://, any case) where PASSWORD,
// percent-decoded, is none of these stand-ins:
//   - absent or empty: postgres://user@host, postgres://user:@host
//   - a reference filled in elsewhere: anything containing ${…}, $(…) or {{…}}, or a whole $NAME
//   - a bracketed stand-in: <password>, [redacted], {password}
//   - a mask: only * x X . • … characters (***, xxxx)
//   - a placeholder word, ignoring case, "-" and "_": password, change-me, changeit, redacted, placeholder,
//     your-password, my-password
//   - shorter than 8 characters, the NIST SP 800-63B minimum: such values are examples (u:p, app:s3cret in
//     the redaction tests). The price is that a real but weak short password is not reported; ours are
//     generated (openssl rand -hex 24).
// A URL ends at whitespace or a quote, and a password holds no unencoded / ? # @ (RFC 3986), so a
// password containing any of these is not seen.

const URL_WITH_PASSWORD = /\bpostgres(?:ql)?:\/\/[^\s:/?#@'"`]*:(?<password>[^\s/?#@'"`]*)@/dgi;

const REFERENCE = /\$\{|\$\(|\{\{|^\$\w+$/;
const BRACKETED = /^(?:<.*>|\[.*\]|\{.*\})$/s;
const MASK = /^[*xX.•…]+$/;
const PLACEHOLDER_WORDS = new Set([
  'password',
  'changeme',
  'changeit',
  'redacted',
  'placeholder',
  'yourpassword',
  'mypassword',
]);
const MINIMUM_LENGTH = 8;

function percentDecoded(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function isPlaceholderPassword(raw) {
  const password = percentDecoded(raw);
  return (
    password.length < MINIMUM_LENGTH ||
    REFERENCE.test(password) ||
    BRACKETED.test(password) ||
    MASK.test(password) ||
    PLACEHOLDER_WORDS.has(password.toLowerCase().replace(/[-_]/g, ''))
  );
}

const messages = {
  DATABASE_URL_PASSWORD: {
    en: (props) =>
      `found a password in a PostgreSQL URL: ${props.PASSWORD} (use a placeholder such as \${POSTGRES_PASSWORD}, or DATABASE_URL_FILE)`,
  },
};

export const creator = {
  messages,
  meta: {
    id: 'secretlint-rule-database-url',
    recommended: true,
    type: 'scanner',
    supportedContentTypes: ['text'],
  },
  create(context) {
    const t = context.createTranslator(messages);
    return {
      file(source) {
        for (const match of source.content.matchAll(URL_WITH_PASSWORD)) {
          const password = match.groups.password;
          if (isPlaceholderPassword(password)) continue;
          context.report({
            message: t('DATABASE_URL_PASSWORD', { PASSWORD: password }),
            range: match.indices.groups.password,
          });
        }
      },
    };
  },
};
