; realtime: sliding-window RLC tuned for latency-sensitive traffic.
;
; Repairs go out after every `every` protected sources, and also as soon as
; the sender has been idle for 1 ms with sources not yet covered (the host
; calls schedule_repair on each source and again at that idle tick), so a
; lost packet of a sparse real-time stream is repaired about 1 ms after it
; was sent instead of after the next `every` packets. `every` follows the
; receiver's reports: 16 with no loss, 4 below 5% loss, 2 above.
;
; Memory: context at 0, state at 128: [128] every (u64), [136] last source
; time in microseconds (u64). Only forward jumps (the verifier's rule).

.section replace/configure
mov r6, r1
mov r1, 2            ; FEC_SCHEME_RLC
mov r2, 32           ; window
mov r3, 8            ; repair symbols (per window, informative)
call 7               ; fec_set_code
mov r1, 32
call 3               ; fec_window_set(32)
mov r1, 4
stxdw [r6+128], r1   ; every = 4 until the first report
mov r0, 0
exit

.section replace/on_source
mov r6, r1
ldxdw r2, [r6+0]       ; ctx->now_us
stxdw [r6+136], r2   ; last source time
ldxw r1, [r6+16]     ; ctx->flow
call 1               ; fec_protect(flow)
mov r0, 0
exit

.section replace/schedule_repair
mov r6, r1
ldxw r2, [r6+8]      ; ctx->sources_since_repair
jeq r2, 0, +11       ; nothing to cover -> done
ldxw r1, [r6+20]     ; ctx->repair_budget
jeq r1, 0, +9        ; no budget -> done
ldxdw r3, [r6+128]   ; every
jge r2, r3, +5       ; enough sources -> emit
ldxdw r4, [r6+0]       ; now_us
ldxdw r5, [r6+136]   ; last source time
sub r4, r5
jge r4, 1000, +1     ; idle for 1 ms -> emit
ja +2                ; otherwise done
mov r1, 1
call 2               ; fec_emit_repair(1)
mov r0, 0
exit

.section replace/on_feedback
mov r6, r1
ldxw r2, [r6+20]     ; ctx->lost
mov r3, 16
jeq r2, 0, +6        ; no loss -> every = 16
ldxw r4, [r6+16]     ; ctx->received
add r4, r2           ; total
mul r2, 20           ; lost * 20 >= total  <=>  loss >= 5%
mov r3, 4
jlt r2, r4, +1
mov r3, 2
stxdw [r6+128], r3
mov r0, 0
exit
