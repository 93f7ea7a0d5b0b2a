using System.Buffers;
using System.Runtime.InteropServices;

namespace SecureMesh.Node.Transfer;

/// <summary>
/// A block of aligned native memory a chunk reply is received into, placed so that the chunk's bytes start on the
/// alignment boundary: the part file's direct writes then go straight from it (<see cref="PartFileWriter.Write"/>),
/// without a copy into a bounce buffer. Rented from a <see cref="ChunkBufferPool"/> for one chunk request and offered
/// to the session's receive loop through a <see cref="ChunkDestination"/>.
/// </summary>
internal sealed unsafe class ChunkBuffer : MemoryManager<byte>
{
    private byte* _pointer;

    internal ChunkBuffer(ChunkBufferPool pool, ChunkArena arena, byte* pointer, int capacity, int alignment)
    {
        Pool = pool;
        Arena = arena;
        Capacity = capacity;
        Alignment = alignment;
        _pointer = pointer;
    }

    /// <summary>Bytes in the block.</summary>
    public int Capacity { get; }

    /// <summary>The block's alignment, and where in it a chunk's bytes start.</summary>
    public int Alignment { get; }

    /// <summary>The pool it came from.</summary>
    internal ChunkBufferPool Pool { get; }

    /// <summary>The memory it was carved from.</summary>
    internal ChunkArena Arena { get; }

    /// <summary>Gives the block back to its pool; its holder must not touch it afterwards.</summary>
    public void Return() => Pool.Return(this);

    /// <summary>Gives the block's memory back to its arena (the pool, once nobody holds the block); true when that was the arena's last block.</summary>
    internal bool Free()
    {
        if (_pointer == null)
        {
            return false;
        }
        _pointer = null;
        return Arena.Release();
    }

    /// <inheritdoc/>
    public override Span<byte> GetSpan() => new(_pointer, Capacity);

    /// <inheritdoc/>
    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    /// <inheritdoc/>
    public override void Unpin()
    {
    }

    /// <summary>Not used: the pool frees the block (<see cref="Free"/>).</summary>
    protected override void Dispose(bool disposing)
    {
    }
}

/// <summary>
/// One chunk request's offer of a <see cref="ChunkBuffer"/> to the session's receive loop, made once per request and
/// decided once: either the receive loop claims the block for that request's reply (<see cref="TryClaim"/>; the block
/// then belongs to the reply and goes back to the pool when the reply is disposed), or the lane withdraws the offer
/// when its request has ended (<see cref="Withdraw"/>; the block goes back to the pool at once). A reply that comes
/// after the lane gave up therefore never lands in a block someone else holds, and the lane verifies a chunk in the
/// block and writes it from there while it holds the reply, so no byte changes between the check and the write.
/// </summary>
internal sealed class ChunkDestination(ChunkBuffer buffer)
{
    private const int Open = 0;
    private const int Claimed = 1;
    private const int Withdrawn = 2;

    private int _state;

    /// <summary>
    /// The receive loop: takes the block for a reply of <paramref name="messageLength"/> bytes whose chunk data starts
    /// <paramref name="headerLength"/> bytes into the message; null when it does not fit or the offer was withdrawn.
    /// The returned owner's memory is exactly the message; disposing it gives the block back.
    /// </summary>
    public IMemoryOwner<byte>? TryClaim(int headerLength, int messageLength)
    {
        if (headerLength < 0 || headerLength > buffer.Alignment || messageLength < headerLength
            || messageLength - headerLength > buffer.Capacity - buffer.Alignment)
        {
            return null;
        }
        if (Interlocked.CompareExchange(ref _state, Claimed, Open) != Open)
        {
            return null;
        }
        buffer.Pool.CountClaim();
        return new Claim(buffer, buffer.Memory.Slice(buffer.Alignment - headerLength, messageLength));
    }

    /// <summary>The lane, when its request has ended (answered, failed or given up): the block goes back unless a reply holds it.</summary>
    public void Withdraw()
    {
        if (Interlocked.CompareExchange(ref _state, Withdrawn, Open) == Open)
        {
            buffer.Return();
        }
    }

    /// <summary>A reply's hold on the block: one message's bytes in it.</summary>
    private sealed class Claim(ChunkBuffer buffer, Memory<byte> memory) : IMemoryOwner<byte>
    {
        private ChunkBuffer? _buffer = buffer;

        public Memory<byte> Memory { get; } = memory;

        public void Dispose() => Interlocked.Exchange(ref _buffer, null)?.Return();
    }
}

/// <summary>
/// The <see cref="ChunkBuffer"/>s of one download: rented per chunk request, back when its lane or its reply is done
/// with it; at most <see cref="MaxPooled"/> are kept for reuse. Blocks are carved from <see cref="ChunkArena"/>s (memory
/// for several blocks back to back); blocks still held when the pool is disposed are freed when they come back, and an
/// arena is released once its last block is.
/// </summary>
internal sealed class ChunkBufferPool : IDisposable
{
    /// <summary>Blocks kept for reuse (the download's reply budget bounds the blocks in use).</summary>
    internal const int MaxPooled = 64;

    /// <summary>
    /// Blocks per arena: one download from one peer uses sixteen (two lanes for each of its eight 1 MiB requests). Fewer
    /// for large chunks, so that an arena maps at most <see cref="MaxArenaBytes"/> (a mapping counts against the
    /// system's commit limit whether or not it is touched).
    /// </summary>
    internal const int BlocksPerArena = 16;

    /// <summary>The most an arena maps, unless one block alone is larger.</summary>
    internal const int MaxArenaBytes = 32 << 20;

    private readonly Stack<ChunkBuffer> _free = new();
    private readonly Lock _gate = new();
    private readonly int _capacity;
    private readonly int _alignment;
    private readonly int _stride;
    private readonly int _blocksPerArena;
    private ChunkArena? _arena;
    private bool _disposed;
    private int _live;
    private long _claims;

    /// <summary>A pool of blocks for chunks of up to <paramref name="chunkSize"/> bytes whose data starts aligned to <paramref name="alignment"/>.</summary>
    public ChunkBufferPool(int chunkSize, int alignment)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(alignment, MinAlignment);
        _alignment = alignment;
        // The reply's header before the data (type, request ID, index, length: at most 21 bytes) fits in the first
        // alignment unit; its proof after the data (a count and at most 64 hashes) in the tail.
        _capacity = checked(alignment + chunkSize + TailRoom);
        // Blocks sit back to back in an arena, each starting on the alignment boundary.
        _stride = checked((_capacity + alignment - 1) / alignment * alignment);
        _blocksPerArena = Math.Clamp(MaxArenaBytes / _stride, 1, BlocksPerArena);
    }

    /// <summary>The smallest alignment taken: a reply's header must fit before the data.</summary>
    internal const int MinAlignment = 512;

    /// <summary>Room after the chunk's bytes for the proof: a varint count and up to 64 hashes of 32 bytes.</summary>
    internal const int TailRoom = 10 + (64 * 32);

    /// <summary>Blocks pooled now (for tests).</summary>
    internal int Pooled
    {
        get
        {
            lock (_gate)
            {
                return _free.Count;
            }
        }
    }

    /// <summary>Blocks allocated and not yet freed (for tests).</summary>
    internal int Live => Volatile.Read(ref _live);

    /// <summary>Arenas holding memory now (for tests).</summary>
    internal int Arenas { get; private set; }

    /// <summary>Replies received into blocks of this pool (for tests).</summary>
    internal long Claims => Interlocked.Read(ref _claims);

    internal void CountClaim() => Interlocked.Increment(ref _claims);

    /// <summary>A block for one chunk request, held by the caller until it gives it back (<see cref="ChunkBuffer.Return"/>).</summary>
    public ChunkBuffer Rent()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryPop(out var pooled))
            {
                return pooled;
            }
            if (_arena is null || !_arena.HasRoom)
            {
                _arena = new ChunkArena(_stride, _blocksPerArena, _alignment);
                Arenas++;
            }
            var buffer = _arena.Carve(this, _capacity, _alignment);
            _live++;
            return buffer;
        }
    }

    internal void Return(ChunkBuffer buffer)
    {
        lock (_gate)
        {
            if (!_disposed && _free.Count < MaxPooled)
            {
                _free.Push(buffer);
                return;
            }
            Free(buffer);
        }
    }

    /// <summary>Under the gate.</summary>
    private void Free(ChunkBuffer buffer)
    {
        _live--;
        if (buffer.Free())
        {
            Arenas--;
        }
    }

    /// <summary>Frees the pooled blocks; those still in use are freed when they come back.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            while (_free.TryPop(out var buffer))
            {
                Free(buffer);
            }
            if (_arena?.Seal() == true)
            {
                Arenas--;
            }
            _arena = null;
        }
    }
}

/// <summary>
/// Memory a <see cref="ChunkBufferPool"/> carves blocks from, several back to back. On Linux it is its own mapping,
/// aligned to and advised for transparent huge pages: a 1 MiB chunk on 4 KiB pages is 256 separate pieces of memory,
/// more than a virtio disk takes in one request (254 segments), so each direct write of such a chunk went out as two
/// requests, each with its own doorbell, interrupt and completion; on huge pages it is one or two physically contiguous
/// pieces and one request, and the write pins fewer pages (Transfer README, session 12). Where huge pages are not to be
/// had, the mapping is ordinary pages, as before. Released once it is sealed (full, or its pool disposed) and every
/// block carved from it has been freed. Used under its pool's gate.
/// </summary>
internal sealed unsafe partial class ChunkArena
{
    private const int HugePage = 2 << 20;
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MapPrivateAnonymous = 0x02 | 0x20;
    private const int MadvHugePage = 14;

    private readonly int _stride;
    private readonly int _blocks;
    private readonly nuint _length;
    private byte* _base;
    private int _carved;
    private int _live;
    private bool _sealed;

    public ChunkArena(int stride, int blocks, int alignment)
    {
        _stride = stride;
        _blocks = blocks;
        var bytes = (long)stride * blocks;
        _length = (nuint)((bytes + HugePage - 1) / HugePage * HugePage);
        _base = OperatingSystem.IsLinux() ? MapHuge(_length) : (byte*)NativeMemory.AlignedAlloc(_length, (nuint)alignment);
    }

    /// <summary>Whether another block can be carved.</summary>
    public bool HasRoom => !_sealed && _carved < _blocks;

    /// <summary>The next block (<see cref="HasRoom"/> must be true).</summary>
    public ChunkBuffer Carve(ChunkBufferPool pool, int capacity, int alignment)
    {
        var block = new ChunkBuffer(pool, this, _base + ((nint)_carved * _stride), capacity, alignment);
        _carved++;
        _live++;
        _sealed |= _carved == _blocks;
        return block;
    }

    /// <summary>A block carved from it was freed; true when that released the arena.</summary>
    public bool Release()
    {
        _live--;
        return ReleaseIfDone();
    }

    /// <summary>No more blocks will be carved; true when that released the arena (none in use).</summary>
    public bool Seal()
    {
        _sealed = true;
        return ReleaseIfDone();
    }

    private bool ReleaseIfDone()
    {
        if (!_sealed || _live > 0 || _base == null)
        {
            return false;
        }
        if (OperatingSystem.IsLinux())
        {
            _ = Munmap((nint)_base, _length);
        }
        else
        {
            NativeMemory.AlignedFree(_base);
        }
        _base = null;
        return true;
    }

    /// <summary>An anonymous mapping of <paramref name="length"/> bytes on a huge-page boundary, advised for huge pages.</summary>
    private static byte* MapHuge(nuint length)
    {
        // Mapped with a huge page to spare, then trimmed to the boundary at both ends.
        var span = length + HugePage;
        var raw = Mmap(0, span, ProtReadWrite, MapPrivateAnonymous, -1, 0);
        if (raw == -1)
        {
            throw new OutOfMemoryException($"could not map {span} bytes for chunk buffers (errno {Marshal.GetLastPInvokeError()})");
        }
        var start = (raw + HugePage - 1) & ~(nint)(HugePage - 1);
        if (start > raw)
        {
            _ = Munmap(raw, (nuint)(start - raw));
        }
        var tail = (raw + (nint)span) - (start + (nint)length);
        if (tail > 0)
        {
            _ = Munmap(start + (nint)length, (nuint)tail);
        }
        // Only advice: a kernel without transparent huge pages refuses it, and the mapping stays on ordinary pages.
        _ = Madvise(start, length, MadvHugePage);
        return (byte*)start;
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);
}
