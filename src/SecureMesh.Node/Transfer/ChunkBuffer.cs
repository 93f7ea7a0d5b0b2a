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

    internal ChunkBuffer(ChunkBufferPool pool, int capacity, int alignment)
    {
        Pool = pool;
        Capacity = capacity;
        Alignment = alignment;
        _pointer = (byte*)NativeMemory.AlignedAlloc((nuint)capacity, (nuint)alignment);
    }

    /// <summary>Bytes in the block.</summary>
    public int Capacity { get; }

    /// <summary>The block's alignment, and where in it a chunk's bytes start.</summary>
    public int Alignment { get; }

    /// <summary>The pool it came from.</summary>
    internal ChunkBufferPool Pool { get; }

    /// <summary>Gives the block back to its pool; its holder must not touch it afterwards.</summary>
    public void Return() => Pool.Return(this);

    /// <summary>Frees the memory (the pool, once nobody holds the block).</summary>
    internal void Free()
    {
        if (_pointer != null)
        {
            NativeMemory.AlignedFree(_pointer);
            _pointer = null;
        }
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
/// with it; at most <see cref="MaxPooled"/> are kept for reuse. Blocks still held when the pool is disposed are freed
/// when they come back.
/// </summary>
internal sealed class ChunkBufferPool : IDisposable
{
    /// <summary>Blocks kept for reuse (the download's reply budget bounds the blocks in use).</summary>
    internal const int MaxPooled = 64;

    private readonly Stack<ChunkBuffer> _free = new();
    private readonly Lock _gate = new();
    private readonly int _capacity;
    private readonly int _alignment;
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

    /// <summary>Replies received into blocks of this pool (for tests).</summary>
    internal long Claims => Interlocked.Read(ref _claims);

    internal void CountClaim() => Interlocked.Increment(ref _claims);

    /// <summary>A block for one chunk request, held by the caller until it gives it back (<see cref="ChunkBuffer.Return"/>).</summary>
    public ChunkBuffer Rent()
    {
        ChunkBuffer? buffer = null;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _free.TryPop(out buffer);
        }
        if (buffer is null)
        {
            buffer = new ChunkBuffer(this, _capacity, _alignment);
            Interlocked.Increment(ref _live);
        }
        return buffer;
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
        }
        buffer.Free();
        Interlocked.Decrement(ref _live);
    }

    /// <summary>Frees the pooled blocks; those still in use are freed when they come back.</summary>
    public void Dispose()
    {
        ChunkBuffer[] free;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            free = [.. _free];
            _free.Clear();
        }
        foreach (var buffer in free)
        {
            buffer.Free();
            Interlocked.Decrement(ref _live);
        }
    }
}
