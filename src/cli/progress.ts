// Progress of long commands: db:seed and the bench's seeding.

/** Redraws one line on a terminal; elsewhere (CI logs, pipes) prints a line every 10%. */
export function progressBar(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
  label: string,
): (done: number, total: number) => void {
  let lastTenth = -1;
  return (done, total) => {
    const ratio = total === 0 ? 1 : done / total;
    const percent = Math.floor(ratio * 100);
    if (stream.isTTY) {
      const width = 30;
      const filled = Math.floor(ratio * width);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
      stream.write(`\r${label} [${bar}] ${String(percent).padStart(3)}% ${done}/${total}`);
      if (done >= total) stream.write('\n');
      return;
    }
    const tenth = Math.floor(percent / 10);
    if (tenth > lastTenth) {
      lastTenth = tenth;
      stream.write(`${label}: ${percent}% (${done}/${total})\n`);
    }
  };
}
