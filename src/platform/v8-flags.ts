// V8 settings of the server process. server.ts imports this module first, so they hold before any other
// module runs. (NODE_OPTIONS cannot carry them: Node refuses these flags there.)
import { setFlagsFromString } from 'node:v8';

/**
 * Allocation-site pretenuring off. Under load, V8 saw the rows of in-flight queries survive a scavenge
 * and began allocating rows, their field strings and the serializer's strings straight in the old
 * generation: every list then promoted its data, scavenges copied what the pretenured rows pointed to,
 * and the old generation filled (a list load: scavenges 1.3–1.5 s of 8 s, a mark-compact every 1.6 s,
 * p99 170–275 ms; with this flag 0.4–0.6 s, no mark-compact, p99 43–82 ms; BENCHMARKS.md, "Memory").
 */
export const V8_FLAGS = ['--no-allocation-site-pretenuring'] as const;

for (const flag of V8_FLAGS) setFlagsFromString(flag);
