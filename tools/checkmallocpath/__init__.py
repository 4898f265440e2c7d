"""tools/check-malloc-path.py's modules, one concern each (the entry script's docstring says what
the tool proves):

    rules        what is forbidden, POSIX's async-signal-safe list, the justified exceptions
    commands     running readelf/objdump; the exit for a library that cannot be checked
    elf          symbols, sections and dynamic relocations (readelf)
    disassembly  objdump's code split into functions (named or not)
    graph        the call graph and the breadth-first walk
    analysis     the walk from the roots and the problems found
    report       the printed result and the exit status
    check        analysis + report for one library
    selftest     --self-test
    cli          the command line
"""
