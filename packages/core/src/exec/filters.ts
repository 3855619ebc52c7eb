/**
 * One command a plugin declares it may run (nova-rootwrap's filters). The Executor refuses
 * anything that matches no filter, before a process starts.
 */
export interface CommandFilter {
  /** The executable, as argv[0]: a bare name found on PATH (`lvcreate`) or an absolute path. */
  readonly command: string;
  /** Run through the configured root helper (e.g. `sudo`). Default: false. */
  readonly asRoot?: boolean;
  /**
   * When given, every argument must fully match at least one of these patterns; an argument that
   * matches none refuses the command. Omit to allow any arguments.
   */
  readonly args?: readonly RegExp[];
}
