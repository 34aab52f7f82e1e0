; realtime: sliding-window RLC tuned for latency-sensitive traffic.
;
; Repairs go out after every `every` protected sources, and also as soon as
; the sender has been idle for 1 ms with sources not yet covered (the host
; calls schedule_repair on each source and again at that idle tick), so a
; lost packet of a sparse real-time stream is repaired about 1 ms after it
; was sent instead of after the next `every` packets. `every` follows the
; receiver's reports: 4 below 5% loss, 2 above; above 5% each emission is
; a group as large as the longest reported loss burst (1..4), so a burst can
; be rebuilt from one group. A report without loss means 16, but only once
; 256 sources in a row were reported without one (before that it means 4, as
; light loss would): a report of a few packets (the last ones before an idle
; spell) says little about the loss, and at 2% loss 256 clean sources in a
; row happen 0.6% of the time.
;
; Memory: context at 0, state at 128: [128] every (u64), [136] last source
; time in microseconds (u64), [144] repairs per group (u64, 0 means 1),
; [152] sources reported in a row without a loss (u64).
; Only forward jumps (the verifier's rule).

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
jeq r2, 0, +16       ; nothing to cover -> done
ldxw r1, [r6+20]     ; ctx->repair_budget
jeq r1, 0, +14       ; no budget -> done
ldxdw r3, [r6+128]   ; every
jge r2, r3, +5       ; enough sources -> emit
ldxdw r4, [r6+0]     ; now_us
ldxdw r5, [r6+136]   ; last source time
sub r4, r5
jge r4, 1000, +1     ; idle for 1 ms -> emit
ja +7                ; otherwise done
ldxdw r2, [r6+144]   ; group
jne r2, 0, +1
mov r2, 1            ; before any report: 1
jle r2, r1, +1
mov r2, r1           ; at most the budget
mov r1, r2
call 2               ; fec_emit_repair(group)
mov r0, 0
exit

.section replace/on_feedback
mov r6, r1
ldxw r2, [r6+20]     ; ctx->lost
mov r3, 16           ; every = 16 with no loss
mov r5, 1            ; group = 1
jne r2, 0, +7        ; loss -> rate
ldxw r4, [r6+16]     ; ctx->received
ldxdw r2, [r6+152]   ; clean sources so far
add r2, r4
stxdw [r6+152], r2
jge r2, 256, +13     ; enough to tell -> store
mov r3, 4            ; too few: as below 5% loss
ja +11               ; -> store
mov r4, 0
stxdw [r6+152], r4   ; a loss: the clean count starts over
ldxw r4, [r6+16]     ; ctx->received
add r4, r2           ; total
mul r2, 20           ; lost * 20 >= total  <=>  loss >= 5%
mov r3, 4
jlt r2, r4, +4       ; below 5% -> store
mov r3, 2
ldxw r5, [r6+28]     ; ctx->max_burst: repairs per group
jle r5, 4, +1
mov r5, 4
stxdw [r6+128], r3
jne r5, 0, +1
mov r5, 1
stxdw [r6+144], r5
mov r0, 0
exit
