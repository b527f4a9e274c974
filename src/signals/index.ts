/**
 * The async and time primitives, one of each (containerd keeps its own in `internal/kmutex`,
 * ggcr in `internal/retry`): waiting on shared work with one's own AbortSignal (`raceSignal`),
 * sharing work in flight (`SingleFlight`), a bounded pool that stops at the first failure
 * (`eachLimited`), one critical section per key (`KeyedMutex`), permits (`Semaphore`), and
 * injectable time (`Clock`, `systemClock`, `ManualClock`). Pure; no I/O. Everything else in kimg
 * uses these rather than its own.
 */
export { eachLimited } from './each-limited.ts';
export { raceSignal } from './race.ts';
export { SingleFlight, type SingleFlightOptions } from './single-flight.ts';
export { KeyedMutex } from './keyed-mutex.ts';
export { Semaphore } from './semaphore.ts';
export { ManualClock, systemClock, type Clock, type ManualClockOptions } from './clock.ts';
