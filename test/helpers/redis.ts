// The Redis server the rate-limit tests share counters through: Debian's redis-server on 127.0.0.1:6379
// (.ci/run starts it), or TEST_REDIS_URL. Tests skip without it on a dev machine, never in CI.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { skipWhenMissing } from './process.ts';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';

/** Why Redis cannot be used here, or undefined when it answers PING. */
export async function redisMissing(): Promise<string | undefined> {
  const redis = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (error) {
    return `no Redis at ${TEST_REDIS_URL} (${(error as Error).message}): apt-get install -y redis-server and start it as .ci/run does`;
  } finally {
    redis.disconnect();
  }
}

export const skipWithoutRedis = async () => skipWhenMissing('Redis tests', await redisMissing());

/**
 * A client address no other test (or concurrent test run) uses, so that budgets counted in the shared
 * Redis never collide: a random /64 (the unit an IPv6 client is counted by) of the documentation prefix.
 */
export function uniqueClientAddress(): string {
  const [a, b] = [randomBytes(2).toString('hex'), randomBytes(2).toString('hex')];
  return `2001:db8:${a}:${b}::1`;
}
