;; badimport: imports a function husk does not provide.
(module
  (import "env" "husk_missing_function" (func $f))
  (memory (export "memory") 1)
  (func (export "_start") (call $f)))
