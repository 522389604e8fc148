;; recurse.wat: husk_decide recurses through $down as deep as the event is
;; long when the point is 7 bytes ("shallow"), and without end otherwise.
;; Each frame holds locals live across its call, as real recursive code
;; does.
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"allow\":true}")
  (func (export "husk_hook_abi_v1"))
  (func (export "husk_alloc") (param i32) (result i32) (i32.const 1024))
  (func $down (param $n i32) (result i64) (local $a i64) (local $b i64)
    (local.set $a (i64.extend_i32_u (local.get $n)))
    (local.set $b (i64.mul (local.get $a) (local.get $a)))
    (if (result i64) (i32.eqz (local.get $n))
      (then (i64.const 0))
      (else (i64.add (i64.add (call $down (i32.sub (local.get $n) (i32.const 1))) (local.get $a)) (local.get $b)))))
  (func (export "husk_decide") (param $p i32) (param $pl i32) (param $e i32) (param $el i32) (result i64)
    ;; "shallow": 7 bytes; anything else recurses (nearly) for ever.
    (drop (call $down (select (local.get $el) (i32.const -1) (i32.eq (local.get $pl) (i32.const 7)))))
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 14)))
)
