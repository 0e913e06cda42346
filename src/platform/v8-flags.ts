// V8 settings of the server process. server.ts imports this module first, so they hold before any other
// module runs. (NODE_OPTIONS cannot carry them: Node refuses these flags there.)
import { setFlagsFromString } from 'node:v8';

/**
 * Allocation-site pretenuring off: under load V8 took the rows of in-flight queries for long-lived and
 * allocated them, their strings and the serializer's straight in the old generation, which then filled
 * with garbage that scavenges had to copy (BENCHMARKS.md, "Memory", "Pretenuring").
 */
const V8_FLAGS = ['--no-allocation-site-pretenuring'] as const;

for (const flag of V8_FLAGS) setFlagsFromString(flag);
