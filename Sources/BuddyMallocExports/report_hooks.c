// The report triggers that need a C body: the library's constructor, the BUDDY_REPORT_SIGNAL
// handler (it chains to the handler the program had installed before), and the
// BUDDY_REPORT_INTERVAL thread. What they do is in Swift (ReportTriggers.swift).
#define _GNU_SOURCE
#include "buddy_exports.h"
#include "buddy_support.h"
#include "buddy_report_support.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

static struct sigaction previous_action;

/// Calls the handler the program had installed for the report signal before the library did
/// (the only indirect call on the signal path; tools/check-malloc-path.py allows it by name).
__attribute__((noinline)) void buddy_report_chain_previous(int sig, siginfo_t *info, void *context) {
    if (previous_action.sa_flags & SA_SIGINFO) {
        if (previous_action.sa_sigaction != NULL) previous_action.sa_sigaction(sig, info, context);
    } else if (previous_action.sa_handler != SIG_DFL && previous_action.sa_handler != SIG_IGN) {
        previous_action.sa_handler(sig);
    }
}

/// The BUDDY_REPORT_SIGNAL handler: async-signal-safe (see buddy_report_on_signal).
__attribute__((noinline)) void buddy_report_signal_handler(int sig, siginfo_t *info, void *context) {
    int saved = errno;
    buddy_report_on_signal();
    errno = saved;
    buddy_report_chain_previous(sig, info, context);
}

/// The interval thread: a tick every interval, and a look at pending signal reports every
/// 50 ms (or every interval, if shorter). All signals are blocked here: the program's signals
/// go to the program's threads.
static void *buddy_report_thread(void *argument) {
    (void)argument;
    uint64_t interval = buddy_report_settings_get()->interval_ns;
    uint64_t step = interval < 50000000u ? interval : 50000000u;
    uint64_t waited = 0;
    for (;;) {
        buddy_os_nap(step);
        if (buddy_report_is_shutting_down()) return NULL;
        waited += step;
        int tick = waited >= interval;
        if (tick) waited = 0;
        if (tick || buddy_report_pending() != 0) buddy_report_on_interval(tick);
    }
}

static void buddy_report_after_fork_in_child(void) {
    // The writers and the interval thread of the parent do not exist here.
    buddy_report_reset_after_fork();
}

void buddy_release_relocation_pages(void); // load_pages.c

__attribute__((constructor)) static void buddy_report_start(void) {
    buddy_release_relocation_pages();
    buddy_report_prepare();
    // Outside malloc now: setenv may allocate (from the pool, like any of the program's calls).
    buddy_options_mark_warned();
    if (buddy_report_target_get() == NULL) return;
    buddy_report_settings *settings = buddy_report_settings_get();
    pthread_atfork(NULL, NULL, buddy_report_after_fork_in_child);
    // A process that starts with the signal ignored keeps it ignored: exec passes SIG_IGN on (a
    // parent, a `trap '' USR1`, a supervisor chose it), and a handler would make every such
    // signal interrupt the program's sleeps and waits with EINTR where none arrived before.
    struct sigaction current;
    if (settings->signal > 0 && sigaction(settings->signal, NULL, &current) == 0 &&
        !(current.sa_flags & SA_SIGINFO) && current.sa_handler == SIG_IGN) {
        settings->signal = 0;
    }
    if (settings->signal > 0) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = buddy_report_signal_handler;
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&action.sa_mask);
        sigaction(settings->signal, &action, &previous_action);
    }
    if (settings->interval_ns > 0) {
        sigset_t all, saved;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attributes, 256 * 1024);
        if (pthread_create(&thread, &attributes, buddy_report_thread, NULL) != 0) {
            static const char message[] = "buddy: could not start the BUDDY_REPORT_INTERVAL thread; no periodic reports\n";
            buddy_os_write(2, message, sizeof message - 1);
        }
        pthread_attr_destroy(&attributes);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    }
}
