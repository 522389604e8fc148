;; artifact: the module of the Wasm OCI artifact tests. _start prints
;; "artifact" and exits 3; the export "hello" prints "hello"; the export
;; "sleep" sleeps forever in poll_oneoff (for exec).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit"
    (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "artifact\n")
  (data (i32.const 272) "hello\n")
  (func $print (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    (call $print (i32.const 256) (i32.const 9))
    (call $exit (i32.const 3)))
  (func (export "hello") (call $print (i32.const 272) (i32.const 6)))
  (func (export "sleep")
    ;; one subscription at 16: userdata 0, tag 0 (clock) at 24, clock id 1
    ;; (monotonic) at 32, timeout 3600 s at 40, precision 0, flags 0 (relative)
    (i32.store (i32.const 32) (i32.const 1))
    (i64.store (i32.const 40) (i64.const 3600000000000))
    (loop $forever
      (drop (call $poll (i32.const 16) (i32.const 128) (i32.const 1) (i32.const 192)))
      (br $forever))))
