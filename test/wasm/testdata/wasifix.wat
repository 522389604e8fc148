;; Probes of the WASI calls the runner provides itself (runner/wasi.go).
;; Each export exits with the errno of the call it checks (0: as WASI
;; says), or 99 when the call succeeded with the wrong result. Fd 3 is a
;; preopened, writable, empty directory.
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink" (func $readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $prestat_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_rights" (func $set_rights (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times" (func $set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $filestat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $plink (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $env_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "target")
  (data (i32.const 32) "link")
  (data (i32.const 48) "a")
  (data (i32.const 56) "b")

  ;; open creates (or opens) the file named by the byte at $name and
  ;; stores its fd at $res; it exits with the errno on failure.
  (func $open_file (param $name i32) (param $res i32)
    (local $e i32)
    (local.set $e (call $open (i32.const 3) (i32.const 0) (local.get $name) (i32.const 1)
      (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (local.get $res)))
    (if (local.get $e) (then (call $exit (local.get $e)))))

  (func $link
    (local $e i32)
    (local.set $e (call $symlink (i32.const 16) (i32.const 6) (i32.const 3) (i32.const 32) (i32.const 4)))
    (if (local.get $e) (then (call $exit (local.get $e)))))

  (func (export "shutdown_file")
    (call $exit (call $shutdown (i32.const 1) (i32.const 3))))
  (func (export "shutdown_closed")
    (call $exit (call $shutdown (i32.const 99) (i32.const 3))))

  (func (export "renumber_to_closed")
    (call $open_file (i32.const 48) (i32.const 300))
    (call $exit (call $renumber (i32.load (i32.const 300)) (i32.const 99))))
  (func (export "renumber_files")
    (local $e i32)
    (call $open_file (i32.const 48) (i32.const 300))
    (call $open_file (i32.const 56) (i32.const 304))
    (local.set $e (call $renumber (i32.load (i32.const 300)) (i32.load (i32.const 304))))
    (if (local.get $e) (then (call $exit (local.get $e))))
    ;; the source is closed now: renumbering it again is EBADF
    (call $exit (i32.ne (call $renumber (i32.load (i32.const 300)) (i32.load (i32.const 304))) (i32.const 8))))

  ;; readlink into a 4-byte buffer at 100 (bufused at 200): "targ", 4,
  ;; and byte 104 untouched.
  (func (export "readlink_short")
    (local $e i32)
    (call $link)
    (i32.store8 (i32.const 104) (i32.const 7))
    (local.set $e (call $readlink (i32.const 3) (i32.const 32) (i32.const 4) (i32.const 100) (i32.const 4) (i32.const 200)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (i32.load (i32.const 100)) (i32.const 0x67726174)) (then (call $exit (i32.const 99))))
    (if (i32.ne (i32.load8_u (i32.const 104)) (i32.const 7)) (then (call $exit (i32.const 99))))
    (if (i32.ne (i32.load (i32.const 200)) (i32.const 4)) (then (call $exit (i32.const 99))))
    ;; the scratch region (after the path) is as it was
    (if (i32.ne (i32.load (i32.const 1000)) (i32.const 0)) (then (call $exit (i32.const 99))))
    (call $exit (i32.const 0)))
  ;; readlink into a 10-byte buffer: "target", 6.
  (func (export "readlink_full")
    (local $e i32)
    (call $link)
    (local.set $e (call $readlink (i32.const 3) (i32.const 32) (i32.const 4) (i32.const 100) (i32.const 10) (i32.const 200)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (i32.load (i32.const 200)) (i32.const 6)) (then (call $exit (i32.const 99))))
    (call $exit (i32.ne (i32.load (i32.const 100)) (i32.const 0x67726174))))
  ;; a buffer out of memory is EFAULT
  (func (export "readlink_fault")
    (call $link)
    (call $exit (call $readlink (i32.const 3) (i32.const 32) (i32.const 4) (i32.const 65534) (i32.const 4) (i32.const 200))))

  ;; fd 3's name ("/") into a buffer of 0 bytes: ENAMETOOLONG
  (func (export "prestat_short")
    (call $exit (call $prestat_name (i32.const 3) (i32.const 400) (i32.const 0))))
  ;; into one of 10: "/", the rest untouched
  (func (export "prestat_long")
    (local $e i32)
    (i32.store8 (i32.const 401) (i32.const 7))
    (local.set $e (call $prestat_name (i32.const 3) (i32.const 400) (i32.const 10)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (i32.load8_u (i32.const 400)) (i32.const 0x2f)) (then (call $exit (i32.const 99))))
    (call $exit (i32.ne (i32.load8_u (i32.const 401)) (i32.const 7))))
  ;; into a buffer past the end of memory: EFAULT
  (func (export "prestat_fault")
    (call $exit (call $prestat_name (i32.const 3) (i32.const 65535) (i32.const 10))))
  ;; a hard link following a symlink: EINVAL; without following: made
  (func (export "link_follow")
    (call $open_file (i32.const 48) (i32.const 300))
    (call $exit (call $plink (i32.const 3) (i32.const 1) (i32.const 48) (i32.const 1) (i32.const 3) (i32.const 56) (i32.const 1))))
  (func (export "link_plain")
    (call $open_file (i32.const 48) (i32.const 300))
    (call $exit (call $plink (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 3) (i32.const 56) (i32.const 1))))
  ;; fd_allocate on the preopened directory: EBADF; on a file: done
  (func (export "allocate_dir")
    (call $exit (call $allocate (i32.const 3) (i64.const 0) (i64.const 1))))
  (func (export "allocate_file")
    (call $open_file (i32.const 48) (i32.const 300))
    (call $exit (call $allocate (i32.load (i32.const 300)) (i64.const 0) (i64.const 10))))

  ;; open_as opens (creating) "a" with the rights and fdflags given and
  ;; returns its fd; it exits with the errno on failure.
  (func $open_as (param $rights i64) (param $fdflags i32) (result i32)
    (local $e i32)
    (local.set $e (call $open (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1)
      (i32.const 1) (local.get $rights) (i64.const 0) (local.get $fdflags) (i32.const 300)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (i32.load (i32.const 300)))
  ;; write one byte (iovec at 500: the byte at 16) to fd; the errno
  (func $write1 (param $fd i32) (result i32)
    (i32.store (i32.const 500) (i32.const 16))
    (i32.store (i32.const 504) (i32.const 1))
    (call $write (local.get $fd) (i32.const 500) (i32.const 1) (i32.const 508)))

  ;; opened for reading only (FD_READ): fdstat has FD_READ, not FD_WRITE,
  ;; and a write is ENOTCAPABLE (its errno is the exit status)
  (func (export "rights_readonly")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 2) (i32.const 0)))
    (local.set $e (call $fdstat (local.get $fd) (i32.const 600)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i64.ne (i64.and (i64.load (i32.const 608)) (i64.const 0x42)) (i64.const 2)) (then (call $exit (i32.const 99))))
    (call $exit (call $write1 (local.get $fd))))
  ;; closed and opened again (the same number) for writing: the write works
  (func (export "rights_reused_fd")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 2) (i32.const 0)))
    (local.set $e (call $close (local.get $fd)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (call $open_as (i64.const 0x42) (i32.const 0)) (local.get $fd)) (then (call $exit (i32.const 98))))
    (call $exit (call $write1 (local.get $fd))))
  ;; opened with FDFLAGS_SYNC: fdstat reports it
  (func (export "sync_flag")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 16)))
    (local.set $e (call $fdstat (local.get $fd) (i32.const 600)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (i32.ne (i32.and (i32.load16_u (i32.const 602)) (i32.const 16)) (i32.const 16))))

  ;; rights dropped to FD_READ: a write is ENOTCAPABLE, taking FD_WRITE
  ;; back is ENOTCAPABLE; exits 0 when both are
  (func (export "set_rights")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 0)))
    (local.set $e (call $set_rights (local.get $fd) (i64.const 2) (i64.const 0)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (call $write1 (local.get $fd)) (i32.const 76)) (then (call $exit (i32.const 97))))
    (call $exit (i32.ne (call $set_rights (local.get $fd) (i64.const 0x42) (i64.const 0)) (i32.const 76))))
  ;; the preopen without PATH_FILESTAT_SET_SIZE: a truncating open is
  ;; ENOTCAPABLE (the exit status)
  (func (export "trunc_rights")
    (local $e i32)
    (local.set $e (call $fdstat (i32.const 3) (i32.const 600)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (local.set $e (call $set_rights (i32.const 3)
      (i64.and (i64.load (i32.const 608)) (i64.const 0xfffffffffff7ffff)) (i64.load (i32.const 616))))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1)
      (i32.const 9) (i64.const 0x42) (i64.const 0) (i32.const 0) (i32.const 300))))

  ;; opened with FDFLAGS_APPEND: a pwrite at offset 0 works (the errno)
  (func (export "pwrite_append")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 1)))
    (local.set $e (call $write1 (local.get $fd)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (call $pwrite (local.get $fd) (i32.const 500) (i32.const 1) (i64.const 0) (i32.const 508))))

  ;; poll for writing stdout (userdata 7) and fd 99 (userdata 8), with a
  ;; 1 s clock (userdata 9): at once, 2 events, stdout ready, 99 EBADF
  (func (export "poll_write")
    (local $e i32)
    ;; subscriptions at 1000, 48 bytes each
    (i64.store (i32.const 1000) (i64.const 7))
    (i32.store8 (i32.const 1008) (i32.const 2))
    (i32.store (i32.const 1016) (i32.const 1))
    (i64.store (i32.const 1048) (i64.const 8))
    (i32.store8 (i32.const 1056) (i32.const 2))
    (i32.store (i32.const 1064) (i32.const 99))
    (i64.store (i32.const 1096) (i64.const 9))
    (i32.store8 (i32.const 1104) (i32.const 0))
    (i32.store (i32.const 1112) (i32.const 1))
    (i64.store (i32.const 1120) (i64.const 1000000000))
    ;; events at 2000, nevents at 2200
    (local.set $e (call $poll (i32.const 1000) (i32.const 2000) (i32.const 3) (i32.const 2200)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (i32.load (i32.const 2200)) (i32.const 2)) (then (call $exit (i32.const 99))))
    (if (i64.ne (i64.load (i32.const 2000)) (i64.const 7)) (then (call $exit (i32.const 98))))
    (if (i32.ne (i32.load16_u (i32.const 2008)) (i32.const 0)) (then (call $exit (i32.const 97))))
    (if (i32.ne (i32.load8_u (i32.const 2010)) (i32.const 2)) (then (call $exit (i32.const 96))))
    (if (i64.ne (i64.load (i32.const 2032)) (i64.const 8)) (then (call $exit (i32.const 95))))
    (call $exit (i32.ne (i32.load16_u (i32.const 2040)) (i32.const 8))))
  ;; a subscription count past the memory: EFAULT
  (func (export "poll_fault")
    (call $exit (call $poll (i32.const 1000) (i32.const 2000) (i32.const 0x7fffffff) (i32.const 2200))))

  ;; the mtime of a (dangling) symlink itself, without SYMLINK_FOLLOW: set
  ;; to 1 s, as path_filestat_get without following sees it
  (func (export "symlink_times")
    (local $e i32)
    (call $link)
    (local.set $e (call $set_times (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 4)
      (i64.const 0) (i64.const 1000000000) (i32.const 4)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (local.set $e (call $filestat (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 4) (i32.const 3000)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (i64.ne (i64.load (i32.const 3048)) (i64.const 1000000000))))

  ;; a file renumbered over stdout (dup2's use): done, the source closed,
  ;; and a write to 1 goes to the file (its errno is the exit status)
  (func (export "renumber_over_stdout")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 0)))
    (local.set $e (call $renumber (local.get $fd) (i32.const 1)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (call $fdstat (local.get $fd) (i32.const 600)) (i32.const 8)) (then (call $exit (i32.const 99))))
    (call $exit (call $write1 (i32.const 1))))
  ;; a file renumbered over the preopen: fd 3 is the file (filetype 4)
  (func (export "renumber_over_preopen")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 0)))
    (local.set $e (call $renumber (local.get $fd) (i32.const 3)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (local.set $e (call $fdstat (i32.const 3) (i32.const 600)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (i32.ne (i32.load8_u (i32.const 600)) (i32.const 4))))
  ;; stdout renumbered over a file (the testsuite's rust/stdio): done, fd 1
  ;; closed (EBADF), and a write to the file's number goes to stdout (its
  ;; errno is the exit status)
  (func (export "renumber_from_stdout")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 0)))
    (local.set $e (call $renumber (i32.const 1) (local.get $fd)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (if (i32.ne (call $fdstat (i32.const 1) (i32.const 600)) (i32.const 8)) (then (call $exit (i32.const 99))))
    (call $exit (call $write1 (local.get $fd))))
  ;; the preopen renumbered over a file: refused (ENOTSUP; wazero resolves
  ;; paths by the preopen's place in its table)
  (func (export "renumber_from_preopen")
    (call $exit (call $renumber (i32.const 3) (call $open_as (i64.const 0x42) (i32.const 0)))))
  ;; a descriptor renumbered onto itself: nothing changes, it still writes
  (func (export "renumber_self")
    (local $fd i32) (local $e i32)
    (local.set $fd (call $open_as (i64.const 0x42) (i32.const 0)))
    (local.set $e (call $renumber (local.get $fd) (local.get $fd)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (call $write1 (local.get $fd))))
  ;; stdout renumbered onto itself: nothing changes, it still writes
  (func (export "renumber_stdout_self")
    (local $e i32)
    (local.set $e (call $renumber (i32.const 1) (i32.const 1)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (call $write1 (i32.const 1))))
  ;; hostile numbers (negative as int32, past any table, the top bit):
  ;; each EBADF (exit 90+i otherwise), and stdout and the preopen still work
  (func $badf (param $from i32) (param $to i32) (param $i i32)
    (if (i32.ne (call $renumber (local.get $from) (local.get $to)) (i32.const 8))
      (then (call $exit (i32.add (i32.const 90) (local.get $i))))))
  (func (export "renumber_hostile")
    (local $e i32)
    (call $badf (i32.const 1) (i32.const -1) (i32.const 0))
    (call $badf (i32.const -1) (i32.const 1) (i32.const 1))
    (call $badf (i32.const 1) (i32.const 0x80000000) (i32.const 2))
    (call $badf (i32.const 0x7fffffff) (i32.const 1) (i32.const 3))
    (call $badf (i32.const 3) (i32.const -2) (i32.const 4))
    (call $badf (i32.const 0x80000001) (i32.const 0x80000001) (i32.const 5))
    (local.set $e (call $fdstat (i32.const 3) (i32.const 600)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (call $exit (call $write1 (i32.const 1))))
  ;; the environment: sizes at 700 (count) and 704 (size), pointers at
  ;; 1000, strings at 8192; each string is written to stdout as it is
  ;; pointed to, with its NUL as a newline; the exit status is the errno
  (func (export "environ")
    (local $e i32) (local $i i32) (local $p i32) (local $n i32)
    (local.set $e (call $env_sizes (i32.const 700) (i32.const 704)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (local.set $e (call $env_get (i32.const 1000) (i32.const 8192)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    ;; the strings are back to back, so one write of the size: NULs to newlines
    (local.set $p (i32.const 8192))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (i32.add (i32.const 8192) (i32.load (i32.const 704)))))
      (if (i32.eqz (i32.load8_u (local.get $p))) (then (i32.store8 (local.get $p) (i32.const 10))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
    ;; each pointer points into the strings, the first at their start
    (if (i32.and (i32.ne (i32.load (i32.const 700)) (i32.const 0))
                 (i32.ne (i32.load (i32.const 1000)) (i32.const 8192))) (then (call $exit (i32.const 99))))
    (i32.store (i32.const 500) (i32.const 8192))
    (i32.store (i32.const 504) (i32.load (i32.const 704)))
    (call $exit (call $write (i32.const 1) (i32.const 500) (i32.const 1) (i32.const 508))))
  ;; hostile pointers: each EFAULT (exit 80+i otherwise), memory untouched
  ;; below them
  (func $fault (param $e i32) (param $i i32)
    (if (i32.ne (local.get $e) (i32.const 21)) (then (call $exit (i32.add (i32.const 80) (local.get $i))))))
  (func (export "environ_fault")
    (call $fault (call $env_sizes (i32.const 65533) (i32.const 704)) (i32.const 0))
    (call $fault (call $env_sizes (i32.const 700) (i32.const -1)) (i32.const 1))
    (call $fault (call $env_get (i32.const 65534) (i32.const 8192)) (i32.const 2))
    (call $fault (call $env_get (i32.const 1000) (i32.const 65535)) (i32.const 3))
    (call $fault (call $env_get (i32.const -4) (i32.const 8192)) (i32.const 4))
    (call $fault (call $env_get (i32.const 1000) (i32.const -2)) (i32.const 5))
    (call $exit (i32.const 0)))
)
