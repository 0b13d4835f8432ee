/*
 * fault: named crash points for the crash-safety tests.
 *
 * Code that publishes to the store calls fault_point() between each durable
 * step.  When the environment variable MODELCACHE_CRASH_AT=N is set, the Nth
 * call in the process raises SIGKILL, so a test can stop an import at every
 * step in turn, the way a power cut or an OOM kill would.  Without the
 * variable a call costs one branch.  MODELCACHE_CRASH_TRACE=1 writes each
 * point's name and number to stderr, to see what a number stands for.
 * MODELCACHE_CRASH_POINT=NAME counts only the points of that name, and
 * MODELCACHE_CRASH_SIGNAL=STOP raises SIGSTOP instead: the process stalls
 * there (as a frozen VM would) until a SIGCONT, for the takeover tests.
 * MODELCACHE_CRASH_THEN=NAME, with STOP: once continued, the process is
 * killed (SIGKILL) at its next point of that name, so that a test can act
 * while it stalls at one step and kill it at a later one.
 */
#ifndef MC_FAULT_H
#define MC_FAULT_H

void fault_point(const char *name);

#endif
