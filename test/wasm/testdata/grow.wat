;; grow: a memory bomb. It grows its memory 1 MiB (16 pages) at a time,
;; touching each new page, until memory.grow fails, then traps
;; (unreachable): a limit that holds shows as a trap, or as the cgroup's OOM
;; kill if the cgroup limit is met first.
(module
  (memory (export "memory") 1)
  (func (export "_start") (local $old i32) (local $p i32)
    (loop $more
      (local.set $old (memory.grow (i32.const 16)))
      (if (i32.eq (local.get $old) (i32.const -1)) (then unreachable))
      ;; touch every page of the new MiB
      (local.set $p (i32.mul (local.get $old) (i32.const 65536)))
      (loop $touch
        (i32.store8 (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 4096)))
        (br_if $touch (i32.lt_u (local.get $p)
          (i32.mul (i32.add (local.get $old) (i32.const 16)) (i32.const 65536)))))
      (br $more))))
