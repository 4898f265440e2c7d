"""The BuddyMalloc benchmark suite, run by tools/bench/bench.py, one concern per module:

    common      paths, build flags, the progress lines on stderr
    allocators  finding the allocators' libraries, installing their packages, the preload probe
    programs    building the C workloads and helpers
    process     running one program through support/runproc.c (wall time, peak RSS, timeouts)
    workloads   the workloads (C programs, CPython, sqlite3, redis-server)
    context     what one run shares (options, programs, scratch folder, environment)
    stats       medians, geometric means, output digests
    report      the text tables
    svg         the charts (bars of ratios; lines against threads)
    machine     what the JSON output records about the machine and the allocators
    suite       the workload suite (the default mode)
    micro       micro mode (ns per malloc+free pair)
    scaling     scaling mode (operations per second against threads, per shape)
    cli         the command line
"""
