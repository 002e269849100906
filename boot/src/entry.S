// Kestrel entry stub: Linux arm64 Image header, EL2 -> EL1, early page
// tables, MMU on, jump to the kernel at its upper-half virtual address.
//
// Runs with the MMU off at whatever physical address the loader chose, so it
// uses only PC-relative addressing (adr/adrp) until the MMU is on. Absolute
// literals (`ldr xN, =sym`) hold link-time virtual addresses and are used
// only after the MMU is on, or as plain constants.

.equ PTE_TABLE,      0x3
.equ PTE_BLOCK_RX,   0x785                  // L1 block: normal WB, inner shareable, AF, EL1 read-only, executable (WXN)
.equ PTE_TEXT,       0x0040000000000787     // page: normal, AF, EL1 RO, UXN
.equ PTE_RODATA,     0x0060000000000787     // page: normal, AF, EL1 RO, UXN, PXN
.equ PTE_RW,         0x0060000000000707     // page: normal, AF, EL1 RW, UXN, PXN
.equ MAIR_VALUE,     0x0044ff04             // 0: Device-nGnRE, 1: Normal WB, 2: Normal NC, 3: Device-nGnRnE
.equ TCR_VALUE,      0xb5103510             // 48-bit VA both halves, 4 KiB granule, WB walks, inner shareable
.equ SCTLR_EL1_MMU,  0x30d8181d             // RES1 + M, C, SA, SA0, I, WXN
.equ SCTLR_EL1_OFF,  0x30d00800             // RES1 only
.equ L3_TABLES,      8                      // the image may span 16 MiB

.section .text.head, "ax"
.global _start
_start:
    .inst   0xfa405a4d          // "MZ": DOS/PE signature for UEFI (efi.S); a harmless ccmp
    b       primary_entry       // code1
    .quad   0x80000             // text_offset
    .quad   __image_size        // image_size: file + .bss + boot stack
    .quad   0xa                 // flags: little-endian, 4 KiB pages, place anywhere
    .quad   0, 0, 0             // reserved
    .ascii  "ARM\x64"           // magic
    .long   __pe_header - _start    // offset of the PE/COFF header (efi.S)

.section .text.boot, "ax"

// Boot CPU. x0 = physical address of the DTB (Linux arm64 boot protocol).
primary_entry:
    mov     x19, x0                         // DTB
    adrp    x20, _start                     // physical load address of the image
    mrs     x21, CurrentEL
    lsr     x21, x21, #2                    // exception level at entry
    bl      start_cycle_counter
    bl      drop_to_el1

    // Zero .bss (it holds the early page tables).
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
1:  cmp     x0, x1
    b.hs    2f
    stp     xzr, xzr, [x0], #16
    b       1b
2:
    // TTBR1: L0[511] -> L1, L1[510] -> L2, L2[0..L3_TABLES] -> L3 tables
    // (2 MiB each, contiguous, so page n's entry is at boot_l3_hi + 8n).
    adrp    x0, boot_l0_hi
    adrp    x1, boot_l1_hi
    orr     x2, x1, #PTE_TABLE
    str     x2, [x0, #511 * 8]
    adrp    x0, boot_l2_hi
    orr     x2, x0, #PTE_TABLE
    str     x2, [x1, #510 * 8]
    adrp    x1, boot_l3_hi
    mov     x3, #0
1:  add     x2, x1, x3, lsl #12
    orr     x2, x2, #PTE_TABLE
    str     x2, [x0, x3, lsl #3]
    add     x3, x3, #1
    cmp     x3, #L3_TABLES
    b.lo    1b

    // L3: every page of the image with W^X permissions, except the stack guard.
    mov     x3, #0                          // offset into the image
    ldr     x4, =__image_size
    ldr     x5, =__text_size
    ldr     x6, =__rodata_size
    ldr     x7, =__guard_offset
    ldr     x8, =__guard_end_offset
    ldr     x9, =PTE_TEXT
    ldr     x10, =PTE_RODATA
    ldr     x11, =PTE_RW
3:  cmp     x3, x4
    b.hs    6f
    cmp     x3, x7
    b.lo    4f
    cmp     x3, x8
    b.lo    5f                              // guard page: leave unmapped
4:  mov     x12, x11
    cmp     x3, x6
    csel    x12, x10, x12, lo
    cmp     x3, x5
    csel    x12, x9, x12, lo
    add     x13, x20, x3
    orr     x13, x13, x12
    lsr     x14, x3, #12
    str     x13, [x1, x14, lsl #3]
5:  add     x3, x3, #4096
    b       3b
6:
    // TTBR0: identity map of the 1 GiB blocks holding the image, so that the
    // instructions that turn the MMU on keep running.
    adrp    x0, boot_l0_id
    adrp    x1, boot_l1_id
    orr     x2, x1, #PTE_TABLE
    ubfx    x3, x20, #39, #9
    str     x2, [x0, x3, lsl #3]
    ubfx    x3, x20, #30, #9
    lsr     x4, x20, #30
    lsl     x4, x4, #30
    ldr     x5, =PTE_BLOCK_RX
    orr     x4, x4, x5
    str     x4, [x1, x3, lsl #3]
    cmp     x3, #511
    b.eq    7f
    add     x3, x3, #1
    mov     x5, #(1 << 30)
    add     x4, x4, x5
    str     x4, [x1, x3, lsl #3]
7:
    // The tables were written with the MMU and caches off: make sure no stale
    // cache line hides them once the walker and loads go through the cache.
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
    bl      invalidate_dcache_range

    bl      enable_mmu
    ldr     x9, =primary_virtual
    br      x9

primary_virtual:
    ldr     x9, =__boot_stack_top
    mov     sp, x9
    mov     x0, x19                         // DTB physical address
    mov     x1, x20                         // image physical address
    mov     x2, x21                         // EL at entry
    bl      kernel_main
8:  wfe
    b       8b

// Secondary CPUs (PSCI CPU_ON or spin-table release), MMU off, physical.
// The boot CPU has filled SECONDARY_MAILBOX and cleaned it to memory. The
// CPU claims it before it uses the stack there: if it is not offered to
// this CPU (any more), the CPU parks without touching a stack (lib.rs).
.global secondary_entry
secondary_entry:
    bl      drop_to_el1
    bl      enable_mmu
    ldr     x9, =secondary_virtual
    br      x9

secondary_virtual:
    ldr     x9, =SECONDARY_MAILBOX
    mrs     x11, mpidr_el1
    ldr     x12, =0xff00ffffff              // Aff3..Aff0
    and     x11, x11, x12
    orr     x12, x11, #(1 << 63)            // offered to this CPU
    orr     x13, x11, #(1 << 62)            // claimed by it
    add     x15, x9, #16                    // the offer word
1:  ldaxr   x10, [x15]
    cmp     x10, x12
    b.ne    9f
    stlxr   w14, x13, [x15]
    cbnz    w14, 1b
    ldr     x1, [x9]                        // stack top (virtual)
    mov     sp, x1
    ldr     x0, [x9, #8]                    // logical CPU index
    bl      kernel_secondary_main
9:  clrex
    wfe
    b       9b

// Turn the MMU on with the boot tables. Clobbers x0-x2, x9.
enable_mmu:
    ldr     x9, =MAIR_VALUE
    msr     mair_el1, x9
    ldr     x9, =TCR_VALUE
    mrs     x0, id_aa64mmfr0_el1
    and     x1, x0, #0xf                    // PARange
    mov     x2, #5                          // at most 48-bit physical addresses
    cmp     x1, x2
    csel    x1, x1, x2, lo
    bfi     x9, x1, #32, #3                 // IPS
    ubfx    x1, x0, #4, #4                  // ASIDBits: 2 means 16-bit ASIDs
    cmp     x1, #2
    b.ne    1f
    orr     x9, x9, #(1 << 36)              // AS
1:  msr     tcr_el1, x9
    adrp    x0, boot_l0_id
    msr     ttbr0_el1, x0
    adrp    x0, boot_l0_hi
    msr     ttbr1_el1, x0
    isb
    tlbi    vmalle1
    dsb     nsh
    isb
    ldr     x9, =SCTLR_EL1_MMU
    msr     sctlr_el1, x9
    isb
    ic      iallu
    dsb     nsh
    isb
    ret

// If entered at EL2, configure it to host a plain EL1 kernel and drop to EL1.
// Clobbers x9, x10.
drop_to_el1:
    mrs     x9, CurrentEL
    lsr     x9, x9, #2
    cmp     x9, #2
    b.ne    2f
    mov     x9, #(1 << 31)                  // HCR_EL2.RW: EL1 is AArch64; no traps, no stage 2
    msr     hcr_el2, x9
    mov     x9, #3                          // CNTHCTL_EL2: EL1 may use the physical timer and counter
    msr     cnthctl_el2, x9
    msr     cntvoff_el2, xzr
    mov     x9, #0x33ff                     // CPTR_EL2: RES1 bits, no FP/SIMD trap
    msr     cptr_el2, x9
    mrs     x9, pmcr_el0
    ubfx    x9, x9, #11, #5                 // PMCR_EL0.N: EL1 gets every counter, no traps
    msr     mdcr_el2, x9
    msr     vttbr_el2, xzr
    mrs     x9, midr_el1
    msr     vpidr_el2, x9
    mrs     x9, mpidr_el1
    msr     vmpidr_el2, x9
    mrs     x9, id_aa64pfr0_el1
    ubfx    x9, x9, #24, #4                 // GIC system register interface?
    cbz     x9, 1f
    mrs     x9, S3_4_C12_C9_5               // ICC_SRE_EL2
    mov     x10, #0x9                       // SRE, Enable (EL1 may use ICC_SRE_EL1)
    orr     x9, x9, x10
    msr     S3_4_C12_C9_5, x9
    isb
    msr     S3_4_C12_C11_0, xzr             // ICH_HCR_EL2: no virtual interrupts
1:  ldr     x9, =SCTLR_EL1_OFF
    msr     sctlr_el1, x9
    mov     x9, #0x3c5                      // EL1h, DAIF masked
    msr     spsr_el2, x9
    msr     elr_el2, x30
    isb
    eret
2:  ret

// Start the PMU cycle counter so the kernel can report how long boot took.
// Clobbers x9.
start_cycle_counter:
    mrs     x9, id_aa64dfr0_el1
    ubfx    x9, x9, #8, #4                  // PMUVer
    cbz     x9, 1f
    cmp     x9, #0xf
    b.eq    1f
    msr     pmccfiltr_el0, xzr              // count at EL0 and EL1
    mov     x9, #0x47                       // LC, C (reset), P (reset), E
    msr     pmcr_el0, x9
    mov     x9, #(1 << 31)
    msr     pmcntenset_el0, x9
    isb
1:  ret

// Apply `dc OP` to every data cache line covering [x0, x1), then dsb and
// return. Clobbers x0, x2, x3. (Also used by efi.S: same global_asm! block.)
.macro DCACHE_RANGE op
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4                 // DminLine: log2(words)
    mov     x2, #4
    lsl     x2, x2, x3                      // line size in bytes
    sub     x3, x2, #1
    bic     x0, x0, x3
1:  cmp     x0, x1
    b.hs    2f
    dc      \op, x0
    add     x0, x0, x2
    b       1b
2:  dsb     sy
    ret
.endm

// Invalidate data cache lines covering [x0, x1).
invalidate_dcache_range:
    DCACHE_RANGE ivac

.ltorg

.section .bss.boot_page_tables, "aw", %nobits
.balign 4096
.global boot_l0_hi
boot_l0_hi: .space 4096
boot_l1_hi: .space 4096
boot_l2_hi: .space 4096
boot_l3_hi: .space 4096 * L3_TABLES
.global boot_l0_id
boot_l0_id: .space 4096
boot_l1_id: .space 4096
