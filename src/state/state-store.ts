import type { PersistedState } from './persisted-state.js';

export interface LoadedState {
  readonly state: PersistedState;
  /** Set when the file was missing or unreadable and the state was started afresh. */
  readonly problem?: string;
  /** No state file yet: a first start. */
  readonly fresh?: boolean;
}

/** Where the daemon's memory lives between runs. load() never throws on a bad file: it reports it. */
export interface StateStore {
  load(): Promise<LoadedState>;
  save(state: PersistedState): Promise<void>;
}
