;; spin: loops forever without calling the host (only a signal ends it).
(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))
