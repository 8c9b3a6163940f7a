#!/usr/bin/env bash
# Fails when core/ or simd/ calls the operating system directly. Every clock,
# file, terminal, environment, thread and CPU query goes through platform/
# (small named functions there), so the runtime ports by porting platform/
# alone, and firmware can replace it. Runs as a CTest test and from .ci/run;
# takes a fraction of a second.
# Usage: tests/check_os_calls.sh [source root]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
mapfile -t files < <(find core simd -name '*.h' -o -name '*.cc' -o -name '*.c' | sort)
perl -e '
  # One pattern per kind of OS use; a line of code (comments blanked, line
  # numbers kept) that matches one fails the check.
  my @checks = (
    # Headers of POSIX and Linux calls, and of the C++ library OS wrappers.
    qr{#include <(unistd|fcntl|dirent|signal|poll|pthread|sched|dlfcn|termios|time|syslog|sys/[a-z_/]+)\.h>},
    qr{#include <(thread|chrono|ctime|csignal|fstream|iostream|filesystem|mutex|shared_mutex|condition_variable|future)>},
    # zlib file API: compressed files are read through platform FileReader
    # and inflated from memory.
    qr{\bgz(open|open64|dopen|read|fread|gets|getc|write|puts|printf|close|close_r|close_w|buffer|seek|tell|eof|error)\b},
    # C and C++ library calls that reach the OS.
    qr{\b(std::)?(getenv|secure_getenv|setenv|putenv|unsetenv|system|isatty|fopen|freopen|popen|tmpfile|remove|clock_gettime|gettimeofday|sysconf|getauxval|sched_yield|nanosleep|usleep|sleep)\s*\(},
    qr{\bstd::(this_thread|thread|chrono|filesystem|random_device|time|clock|cout|cerr|clog|cin|ifstream|ofstream|fstream|mutex|condition_variable)\b},
    # POSIX calls written ::name( (plain read( and write( are common method
    # and lambda names).
    qr{::(open|openat|close|read|write|pread|pwrite|lseek|fsync|fdatasync|rename|renameat|unlink|stat|fstat|lstat|mkdir|opendir|readdir|mmap|munmap|madvise|mincore|mprotect|kill|fork|getpid|exit|_exit|abort)\s*\(},
    # Terminal output: the runtime prints nothing ...
    qr{\b(std::)?(printf|puts|putchar|fputs|fputc|fprintf|fwrite|perror|fflush)\s*\(|\b(stdout|stderr|stdin)\b},
  );
  # ... but the Keras progress bar of the optional thaw_io, whose job is
  # printing Fit progress to standard output.
  my %allowed = ("core/io/progress.cc" => $checks[-1]);
  my $failures = 0;
  for my $file (@ARGV) {
    open(my $in, "<", $file) or die "$file: $!";
    local $/;
    my $code = <$in>;
    # Blank comments, keeping newlines so line numbers stay right. (No
    # source here puts // or /* inside a string literal.)
    $code =~ s{/\*.*?\*/}{ (my $c = $&) =~ s/[^\n]//g; $c }gse;
    $code =~ s{//[^\n]*}{}g;
    my $line = 0;
    for my $text (split /\n/, $code, -1) {
      ++$line;
      for my $check (@checks) {
        next unless $text =~ $check;
        next if defined $allowed{$file} && $allowed{$file} == $check;
        $text =~ s/^\s+//;
        print "$file:$line: $text\n";
        ++$failures;
      }
    }
  }
  if ($failures) {
    print STDERR "thaw: $failures OS call(s) outside platform/ (above): move each behind a small ",
                 "named function in platform/ and call that\n";
    exit 1;
  }
  print "thaw: no OS call in core/ or simd/\n";
' "${files[@]}"
