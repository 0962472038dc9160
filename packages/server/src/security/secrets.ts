/**
 * Webhook secrets at rest: AES-256-GCM with a key from CASHWIRE_SECRET_KEY (32 bytes, base64 or hex), or one
 * generated once into the data folder. Stored as `enc:v1:<iv>:<tag>:<ciphertext>` (base64url parts). A value without
 * that prefix is read as plain text, so rows written before encryption stay readable.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

const PREFIX = 'enc:v1:';

export interface SecretBox {
  seal(plain: string): string;
  open(stored: string): string;
}

export interface Fingerprinter {
  /** A stable, keyed fingerprint (HMAC-SHA256, hex) of a value that must not be stored, such as a card number. */
  fingerprint(value: string): string;
}

export function parseKey(raw: string): Buffer {
  const s = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(s) ? Buffer.from(s, 'hex') : Buffer.from(s, 'base64');
  if (key.length !== 32) throw new Error('CASHWIRE_SECRET_KEY must be 32 bytes, as 64 hex characters or base64');
  return key;
}

export function secretBox(key: Buffer): SecretBox & Fingerprinter {
  // A key of its own for fingerprints, derived from the master key: never the encryption key itself.
  const fingerprintKey = createHmac('sha256', key).update('cashwire fingerprint v1').digest();
  return {
    fingerprint(value) {
      return createHmac('sha256', fingerprintKey).update(value).digest('hex');
    },
    seal(plain) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return `${PREFIX}${iv.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${ct.toString('base64url')}`;
    },
    open(stored) {
      if (!stored.startsWith(PREFIX)) return stored;
      const [iv, tag, ct] = stored.slice(PREFIX.length).split(':');
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv!, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag!, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ct!, 'base64url')), decipher.final()]).toString('utf8');
    },
  };
}

/** The key from the environment, else `<dataDir>/secret.key`, made on first use (mode 0600). */
export async function loadSecretKey(env: NodeJS.ProcessEnv, dataDir: string): Promise<Buffer> {
  if (env.CASHWIRE_SECRET_KEY) return parseKey(env.CASHWIRE_SECRET_KEY);
  const file = path.join(dataDir, 'secret.key');
  if (existsSync(file)) return parseKey(await readFile(file, 'utf8'));
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  await writeFile(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' }).catch(async (err) => {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  });
  await chmod(file, 0o600).catch(() => {});
  return parseKey(await readFile(file, 'utf8'));
}
