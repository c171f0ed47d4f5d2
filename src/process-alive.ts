/** Whether a process of this host still runs, for the files and locks a killed one leaves behind. */

/** True unless no process has this pid (a process of another user still counts as alive). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
