//! The module's allocator: power-of-two size classes with free lists over `memory.grow`.
//!
//! Replaces wasi-libc's `dlmalloc` (~10 KiB of code with `free`, `realloc`,
//! `posix_memalign`), both as Rust's global allocator and as the C `malloc` family that
//! wasi-libc itself calls (environment, `getcwd`): defining those symbols here keeps the
//! linker from pulling `dlmalloc` in at all.
//!
//! Every block is `2^class` bytes and starts with an 8-byte header (its class, and the
//! distance from the block's start to the pointer handed out); a freed block goes on its
//! class's free list and is reused by the next request of that class. Blocks are never
//! split or merged and memory is never returned, so the heap only grows when a class's
//! free list is empty: a steady workload (the same connections, buffers and messages
//! over and over) reaches its peak and stays there (the host test
//! `memory_stays_bounded_over_many_connections` checks it). The price is up to 2x per
//! block against an exact fit, which for this filter's few small, short-lived
//! allocations is a few KiB.
//!
//! Single-threaded (wasm32 without threads): the state is a plain static.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

/// Header bytes before every pointer handed out (class: u32, offset from block: u32).
const HEADER: usize = 8;
/// Smallest class: 32-byte blocks (24 usable bytes).
const MIN_CLASS: u32 = 5;
/// Classes up to 2^31 bytes (the wasm32 address space).
const CLASSES: usize = 32;
const PAGE: usize = 65_536;

struct State {
    /// Head of each class's free list (0 = empty); the next link is a block's first word.
    free: [usize; CLASSES],
    /// Next unused byte of the bump region, and its end (the memory's current size).
    top: usize,
    end: usize,
}

struct Heap(UnsafeCell<State>);

// SAFETY: wasm32 without the threads proposal runs one thread; nothing shares the state.
unsafe impl Sync for Heap {}

static HEAP: Heap = Heap(UnsafeCell::new(State {
    free: [0; CLASSES],
    top: 0,
    end: 0,
}));

#[global_allocator]
static GLOBAL: Classes = Classes;

/// The global allocator (see the module docs).
#[derive(Debug)]
pub struct Classes;

/// Takes a block of `2^class` bytes, from the class's free list or the bump region.
/// Returns null when memory cannot grow.
///
/// # Safety
/// Single-threaded use only (the module's state is unsynchronised).
unsafe fn take(class: u32) -> *mut u8 {
    // SAFETY: single-threaded (see `Heap`); no other reference to the state is live.
    let st = unsafe { &mut *HEAP.0.get() };
    let head = st.free[class as usize];
    if head != 0 {
        // SAFETY: `head` is a block this allocator handed out and got back; its first
        // word holds the next link.
        st.free[class as usize] = unsafe { *(head as *const usize) };
        return head as *mut u8;
    }
    let size = 1usize << class;
    if st.top == 0 {
        // First use: start after whatever the module's data and stack occupy.
        st.end = wasm32::memory_size(0) * PAGE;
        st.top = st.end;
    }
    // Blocks are aligned to their size up to one page: a pointer after the header is
    // then 8-aligned, and aligned to `align` when the block was sized for it.
    let start = (st.top + (size.min(PAGE) - 1)) & !(size.min(PAGE) - 1);
    let Some(stop) = start.checked_add(size) else {
        return ptr::null_mut();
    };
    if stop > st.end {
        let pages = (stop - st.end).div_ceil(PAGE);
        if wasm32::memory_grow(0, pages) == usize::MAX {
            return ptr::null_mut();
        }
        st.end += pages * PAGE;
    }
    st.top = stop;
    start as *mut u8
}

/// The class (log2 of the block size) for `size` bytes at `align`, header included.
fn class_for(size: usize, align: usize) -> Option<u32> {
    let need = size
        .checked_add(HEADER)?
        .checked_add(align.saturating_sub(HEADER))?;
    let class = need
        .checked_next_power_of_two()?
        .trailing_zeros()
        .max(MIN_CLASS);
    (class < CLASSES as u32).then_some(class)
}

/// Allocates `size` bytes aligned to `align` (a power of two).
///
/// # Safety
/// Single-threaded use only.
unsafe fn allocate(size: usize, align: usize) -> *mut u8 {
    let align = align.max(HEADER);
    let Some(class) = class_for(size, align) else {
        return ptr::null_mut();
    };
    // SAFETY: forwarded.
    let block = unsafe { take(class) };
    if block.is_null() {
        return block;
    }
    let user = ((block as usize + HEADER) + (align - 1)) & !(align - 1);
    let offset = user - block as usize;
    // SAFETY: the header lies inside the block, before `user` (offset >= HEADER).
    unsafe {
        *((user - 8) as *mut u32) = class;
        *((user - 4) as *mut u32) = offset as u32;
    }
    user as *mut u8
}

/// The class and block start of a pointer from `allocate`.
///
/// # Safety
/// `p` must come from `allocate` and not be freed yet.
unsafe fn header(p: *mut u8) -> (u32, usize) {
    let user = p as usize;
    // SAFETY: `allocate` wrote the header just before `p`.
    unsafe {
        let class = *((user - 8) as *const u32);
        let offset = *((user - 4) as *const u32) as usize;
        (class, user - offset)
    }
}

/// Returns a pointer from `allocate` to its class's free list.
///
/// # Safety
/// `p` must come from `allocate` and not be freed yet.
unsafe fn release(p: *mut u8) {
    if p.is_null() {
        return;
    }
    // SAFETY: caller's contract; single-threaded.
    unsafe {
        let (class, block) = header(p);
        let st = &mut *HEAP.0.get();
        *(block as *mut usize) = st.free[class as usize];
        st.free[class as usize] = block;
    }
}

/// Resizes in place when the block has room, else moves.
///
/// # Safety
/// `p` must come from `allocate` (or be null) and not be freed yet.
unsafe fn resize(p: *mut u8, old: usize, align: usize, new: usize) -> *mut u8 {
    if p.is_null() {
        // SAFETY: forwarded.
        return unsafe { allocate(new, align) };
    }
    // SAFETY: caller's contract.
    let (class, block) = unsafe { header(p) };
    let room = (1usize << class) - (p as usize - block);
    if new <= room {
        return p;
    }
    // SAFETY: forwarded; the copy stays within both allocations (`old` <= the old room).
    unsafe {
        let q = allocate(new, align);
        if !q.is_null() {
            ptr::copy_nonoverlapping(p, q, old.min(room).min(new));
            release(p);
        }
        q
    }
}

// SAFETY: `allocate` returns blocks of at least `size` bytes at `align`, or null; blocks
// are only reused after `dealloc`.
unsafe impl GlobalAlloc for Classes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded module.
        unsafe { allocate(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: `p` came from `alloc`.
        unsafe { release(p) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `p` came from `alloc` with `layout`.
        unsafe { resize(p, layout.size(), layout.align(), new_size) }
    }
}

// The C allocation functions wasi-libc calls (environment set-up, `getcwd`): the same
// heap, so wasi-libc's own `dlmalloc` is never linked.

/// C `malloc`.
///
/// # Safety
/// C allocation contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut u8 {
    // SAFETY: single-threaded module.
    unsafe { allocate(size, 16) }
}

/// C `free`.
///
/// # Safety
/// `p` from this module's `malloc` family, or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut u8) {
    // SAFETY: caller's contract.
    unsafe { release(p) }
}

/// C `calloc`.
///
/// # Safety
/// C allocation contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut u8 {
    let Some(total) = n.checked_mul(size) else {
        return ptr::null_mut();
    };
    // SAFETY: single-threaded module; the block has `total` bytes.
    unsafe {
        let p = allocate(total, 16);
        if !p.is_null() {
            ptr::write_bytes(p, 0, total);
        }
        p
    }
}

/// C `realloc`.
///
/// # Safety
/// `p` from this module's `malloc` family, or null.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: caller's contract; the room check bounds the copy.
    unsafe { resize(p, usize::MAX, 16, size) }
}

/// C `posix_memalign`.
///
/// # Safety
/// `out` must be writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut u8, align: usize, size: usize) -> i32 {
    // SAFETY: caller's contract.
    unsafe {
        let p = allocate(size, align);
        if p.is_null() {
            return 48; // ENOMEM in wasi-libc
        }
        *out = p;
    }
    0
}

/// C `aligned_alloc`.
///
/// # Safety
/// C allocation contract.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    // SAFETY: single-threaded module.
    unsafe { allocate(size, align) }
}
