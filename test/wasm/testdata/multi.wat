;; multi: two entry points, for runwasi's "path#func" form: _start prints
;; "start", the export "other" prints "other".
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "start\n")
  (data (i32.const 48) "other\n")
  (func $print (param $at i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (call $print (i32.const 32)))
  (func (export "other") (call $print (i32.const 48))))
