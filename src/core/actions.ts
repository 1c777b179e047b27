/**
 * Conventions shared by every sans-I/O protocol core.
 *
 * A core never touches a socket, a clock or the kernel. Each input method
 * (`receive`, `open`, `close`, `timerFired`, ...) returns the list of actions the
 * edge must carry out. Timers are named per core; starting a timer that is already
 * running restarts it. The edge (or a FakeClock in tests) owns real time.
 */

export interface StartTimer {
  type: 'timer-start';
  timer: string;
  ms: number;
}

export interface StopTimer {
  type: 'timer-stop';
  timer: string;
}

export type TimerAction = StartTimer | StopTimer;

export const startTimer = (timer: string, ms: number): StartTimer => ({ type: 'timer-start', timer, ms });
export const stopTimer = (timer: string): StopTimer => ({ type: 'timer-stop', timer });

export function isTimerAction(a: { type: string }): a is TimerAction {
  return a.type === 'timer-start' || a.type === 'timer-stop';
}
