import type { Progress } from '../storage/maintenance/progress.js';
import { formatBytes, formatDuration } from './format.js';

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Bars drawn on a terminal right now: cleared before stdout is written, so a result never shares their line. */
const shown = new Set<ProgressView>();

/**
 * Clears every bar on the terminal; each is drawn again at its next update. Called before
 * writing to stdout: stdout and stderr share the terminal's line, and a key printed after a bar
 * would be glued to it (and copied from the terminal with the bar's text).
 */
export function clearBars(): void {
  for (const view of shown) view.clear();
}

/** The time left is not guessed from less than this: the first files of a batch carry its start-up. */
const SETTLE_MS = 1000;

/**
 * Shows how a long operation goes on stderr: on a terminal, one bar redrawn in place (bytes,
 * files, rate, time left); otherwise a plain line at most every `interval` ms, so logs stay short.
 */
export class ProgressView {
  private readonly start = performance.now();
  private last = -Infinity;
  private latest: Progress | null = null;
  /** files/bytes of the last plain line printed: the final state is printed once, not again by finish(). */
  private printed: string | null = null;
  private readonly interval: number;

  constructor(
    private readonly label: string,
    private readonly out: ProgressOutput = process.stderr,
    private readonly enabled = true,
  ) {
    this.interval = out.isTTY ? 100 : Number(process.env.CAIRN_PROGRESS_INTERVAL ?? 2000);
  }

  update = (progress: Progress): void => {
    this.latest = progress;
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.last < this.interval) return;
    this.last = now;
    this.draw(progress);
  };

  /** Leaves the last state: on a terminal the bar drawn once more and ended, else a line (unless it is already the last one printed). */
  finish(): void {
    if (!this.enabled || this.latest === null) return;
    if (this.out.isTTY) {
      this.draw(this.latest);
      this.out.write('\n');
      shown.delete(this);
    } else if (this.printed !== stateOf(this.latest)) this.draw(this.latest);
  }

  /** Erases the bar from the terminal's line; the next update draws it again at once. */
  clear(): void {
    if (!shown.delete(this)) return;
    this.out.write('\r\x1b[K');
    this.last = -Infinity;
  }

  private draw(progress: Progress): void {
    if (this.out.isTTY) {
      this.out.write('\r\x1b[K' + this.bar(progress));
      shown.add(this);
    } else {
      this.out.write(this.line(progress) + '\n');
      this.printed = stateOf(progress);
    }
  }

  private numbers(progress: Progress): { files: string; bytes: string; rate: string; left: string; fraction: number | null } {
    const seconds = (performance.now() - this.start) / 1000;
    const rate = seconds > 0 ? progress.bytes / seconds : 0;
    const fraction =
      progress.totalBytes ? progress.bytes / progress.totalBytes : progress.totalFiles ? progress.files / progress.totalFiles : null;
    const left = fraction === 1 ? 0 : fraction && fraction > 0 && seconds * 1000 >= SETTLE_MS ? (seconds * (1 - fraction)) / fraction : NaN;
    return {
      files: `${progress.files}${progress.totalFiles !== null ? '/' + progress.totalFiles : ''} files`,
      bytes: `${formatBytes(progress.bytes)}${progress.totalBytes !== null ? ' / ' + formatBytes(progress.totalBytes) : ''}`,
      rate: `${formatBytes(rate)}/s`,
      left: Number.isNaN(left) ? '' : `${formatDuration(left)} left`,
      fraction,
    };
  }

  private bar(progress: Progress): string {
    const n = this.numbers(progress);
    const width = 24;
    const filled = n.fraction === null ? 0 : Math.min(width, Math.round(n.fraction * width));
    const bar = n.fraction === null ? '' : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(n.fraction * 100)}% `;
    const text = `${this.label} ${bar}${n.bytes}  ${n.files}  ${n.rate}  ${n.left}`.trimEnd();
    return this.out.columns ? text.slice(0, this.out.columns - 1) : text;
  }

  private line(progress: Progress): string {
    const n = this.numbers(progress);
    const percent = n.fraction === null ? '' : ` ${Math.floor(n.fraction * 100)}%,`;
    return `${this.label}:${percent} ${n.files}, ${n.bytes}, ${n.rate}${n.left ? ', ' + n.left : ''}`;
  }
}

function stateOf(progress: Progress): string {
  return `${progress.files}/${progress.bytes}`;
}
