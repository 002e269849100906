// UEFI: the PE/COFF header that makes the image an EFI application, and the
// hand-off from the EFI entry (efi.rs) to the normal entry stub.
//
// Assembled together with entry.S (one global_asm!, entry.S first), so the
// header below follows the 64-byte Linux arm64 Image header in .text.head:
// the Image header's last field (offset 60, the DOS e_lfanew) points here,
// and code0 starts with "MZ".
//
// Layout as a PE image (see link.ld): the headers fill the first 4 KiB page,
// then two page-aligned sections whose file offsets equal their RVAs, so the
// firmware lays the image out in memory exactly as in the file, plus zeroed
// .bss and boot stack:
//   .text  [__pe_text_offset, __text_end)      code, RX
//   .data  [__text_end, __image_end)            rodata, data, bss, stack; RW
// The image is position-independent until the entry stub turns its own MMU
// on, so it needs no base relocations; "relocations stripped" stays clear so
// that the firmware may load it anywhere (ImageBase 0 is never free).

.equ IMAGE_FILE_MACHINE_ARM64,        0xaa64
.equ IMAGE_FILE_EXECUTABLE_IMAGE,     0x0002
.equ IMAGE_FILE_LINE_NUMS_STRIPPED,   0x0004
.equ IMAGE_FILE_DEBUG_STRIPPED,       0x0200
.equ PE_OPT_MAGIC_PE32PLUS,           0x020b
.equ IMAGE_SUBSYSTEM_EFI_APPLICATION, 10
.equ IMAGE_DLLCHARACTERISTICS_NX_COMPAT, 0x0100
.equ IMAGE_SCN_CNT_CODE,              0x00000020
.equ IMAGE_SCN_CNT_INITIALIZED_DATA,  0x00000040
.equ IMAGE_SCN_MEM_EXECUTE,           0x20000000
.equ IMAGE_SCN_MEM_READ,              0x40000000
.equ IMAGE_SCN_MEM_WRITE,             0x80000000
.equ PE_SECTION_ALIGNMENT,            0x1000    // pages: the firmware can map sections RX / RW-NX
.equ PE_FILE_ALIGNMENT,               0x200

.section .text.head, "ax"
.balign 8
__pe_header:
    .ascii  "PE\0\0"
    // COFF file header
    .short  IMAGE_FILE_MACHINE_ARM64
    .short  2                                   // NumberOfSections
    .long   0                                   // TimeDateStamp: none, for reproducible images
    .long   0                                   // PointerToSymbolTable
    .long   0                                   // NumberOfSymbols
    .short  .Lpe_sections - .Lpe_optional       // SizeOfOptionalHeader
    .short  IMAGE_FILE_EXECUTABLE_IMAGE | IMAGE_FILE_LINE_NUMS_STRIPPED | IMAGE_FILE_DEBUG_STRIPPED
.Lpe_optional:
    .short  PE_OPT_MAGIC_PE32PLUS
    .byte   0, 0                                // linker version
    .long   __pe_text_size                      // SizeOfCode
    .long   __pe_data_file_size                 // SizeOfInitializedData
    .long   __pe_bss_size                       // SizeOfUninitializedData
    .long   kestrel_efi_main - _start           // AddressOfEntryPoint (efi.rs)
    .long   __pe_text_offset                    // BaseOfCode
    .quad   0                                   // ImageBase
    .long   PE_SECTION_ALIGNMENT
    .long   PE_FILE_ALIGNMENT
    .short  0, 0                                // operating system version
    .short  0, 0                                // image version
    .short  0, 0                                // subsystem version
    .long   0                                   // Win32VersionValue
    .long   __image_size                        // SizeOfImage: file + .bss + boot stack
    .long   __pe_text_offset                    // SizeOfHeaders: the first page
    .long   0                                   // CheckSum (not checked for EFI images)
    .short  IMAGE_SUBSYSTEM_EFI_APPLICATION
    .short  IMAGE_DLLCHARACTERISTICS_NX_COMPAT  // no code in data, no data in code
    .quad   0, 0, 0, 0                          // stack and heap reserve/commit: firmware's own
    .long   0                                   // LoaderFlags
    .long   (.Lpe_sections - .Lpe_directories) / 8  // NumberOfRvaAndSizes
.Lpe_directories:
    // export, import, resource, exception, certificate, base relocation: none
    .quad   0, 0, 0, 0, 0, 0
.Lpe_sections:
    .ascii  ".text\0\0\0"
    .long   __pe_text_size                      // VirtualSize
    .long   __pe_text_offset                    // VirtualAddress
    .long   __pe_text_size                      // SizeOfRawData
    .long   __pe_text_offset                    // PointerToRawData
    .long   0, 0                                // relocations, line numbers
    .short  0, 0
    .long   IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_READ | IMAGE_SCN_MEM_EXECUTE
    .ascii  ".data\0\0\0"
    .long   __pe_data_size                      // VirtualSize: up to __image_end
    .long   __pe_data_offset                    // VirtualAddress
    .long   __pe_data_file_size                 // SizeOfRawData: up to the end of the file
    .long   __pe_data_offset                    // PointerToRawData
    .long   0, 0
    .short  0, 0
    .long   IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ | IMAGE_SCN_MEM_WRITE

// efi_enter_kernel(x0 = DTB physical address, x1 = DTB size): called by
// kestrel_efi_main after ExitBootServices, at EL2 or EL1 with the firmware's
// identity map, MMU and caches on. Leaves the way the Linux boot protocol
// wants the kernel entered: image (and tree) cleaned to the point of
// coherency, MMU and data cache off, interrupts masked. Does not return and
// touches no stack after the clean.
.section .text.efi, "ax"
.global efi_enter_kernel
efi_enter_kernel:
    msr     daifset, #0xf
    mov     x19, x0
    mov     x20, x1
    // Everything of the image the stub reads with the MMU off: code and
    // literals, .data (EFI_MEMORY_MAP), and .bss (which it zeroes and then
    // invalidates: no dirty line may be written back over it later).
    adrp    x0, _start
    ldr     x1, =__image_size
    add     x1, x0, x1
    bl      efi_clean_dcache_range
    mov     x0, x19
    add     x1, x19, x20
    bl      efi_clean_dcache_range

    mov     x11, #0x1005                        // SCTLR_ELx: M (bit 0), C (2), I (12)
    mrs     x9, CurrentEL
    lsr     x9, x9, #2
    cmp     x9, #2
    b.ne    1f
    mrs     x10, sctlr_el2
    bic     x10, x10, x11
    msr     sctlr_el2, x10
    b       2f
1:  mrs     x10, sctlr_el1
    bic     x10, x10, x11
    msr     sctlr_el1, x10
2:  isb
    ic      iallu                               // no stale instructions from the firmware's run
    dsb     nsh
    isb
    mov     x0, x19
    b       primary_entry                       // entry.S, as from any Linux boot loader

// Clean data cache lines covering [x0, x1) to the point of coherency
// (DCACHE_RANGE is defined in entry.S). Clobbers x0, x2, x3.
efi_clean_dcache_range:
    DCACHE_RANGE cvac

.ltorg
