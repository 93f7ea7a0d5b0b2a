using System.Numerics;

namespace SecureMesh.Core.Content;

/// <summary>Which chunks of a file a peer holds: one bit per chunk, most significant bit first, spare bits of the last byte zero.</summary>
public sealed class ChunkBitfield
{
    /// <summary>Most chunks a bitfield may describe.</summary>
    public const long MaxChunkCount = ChunkLayout.MaxChunkCount; // 32 KiB of bits

    private readonly byte[] _bits;

    /// <summary>An empty bitfield for <paramref name="chunkCount"/> chunks.</summary>
    public ChunkBitfield(long chunkCount)
    {
        if (chunkCount < 0 || chunkCount > MaxChunkCount)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkCount));
        }
        ChunkCount = chunkCount;
        _bits = new byte[ByteLength(chunkCount)];
    }

    private ChunkBitfield(long chunkCount, byte[] bits)
    {
        ChunkCount = chunkCount;
        _bits = bits;
        SetCount = CountBits(bits);
    }

    /// <summary>Number of chunks described.</summary>
    public long ChunkCount { get; }

    /// <summary>Number of chunks marked present.</summary>
    public long SetCount { get; private set; }

    /// <summary>True when every chunk is present.</summary>
    public bool IsComplete => SetCount == ChunkCount;

    /// <summary>The packed bits.</summary>
    public ReadOnlySpan<byte> Bytes => _bits;

    /// <summary>Bytes needed for <paramref name="chunkCount"/> bits.</summary>
    public static int ByteLength(long chunkCount) => (int)((chunkCount + 7) / 8);

    /// <summary>Reads packed bits; false when the length is wrong or a spare bit is set.</summary>
    public static bool TryFromBytes(long chunkCount, ReadOnlySpan<byte> bits, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out ChunkBitfield? bitfield)
    {
        bitfield = null;
        if (chunkCount < 0 || chunkCount > MaxChunkCount || bits.Length != ByteLength(chunkCount))
        {
            return false;
        }
        var spare = (int)((8 - (chunkCount % 8)) % 8);
        if (spare != 0 && (bits[^1] & ((1 << spare) - 1)) != 0)
        {
            return false;
        }
        bitfield = new ChunkBitfield(chunkCount, bits.ToArray());
        return true;
    }

    /// <summary>A bitfield with every chunk present.</summary>
    public static ChunkBitfield All(long chunkCount)
    {
        var field = new ChunkBitfield(chunkCount);
        var bits = field._bits;
        bits.AsSpan().Fill(0xFF);
        var spare = (int)((8 - (chunkCount % 8)) % 8);
        if (spare != 0)
        {
            // Spare bits of the last byte stay zero.
            bits[^1] = (byte)(0xFF << spare);
        }
        field.SetCount = chunkCount;
        return field;
    }

    /// <summary>True when chunk <paramref name="index"/> is present; false when out of range.</summary>
    public bool IsSet(long index) =>
        index >= 0 && index < ChunkCount && (_bits[index >> 3] & (0x80 >> (int)(index & 7))) != 0;

    /// <summary>Marks chunk <paramref name="index"/> present.</summary>
    public void Set(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, ChunkCount);
        var mask = (byte)(0x80 >> (int)(index & 7));
        if ((_bits[index >> 3] & mask) == 0)
        {
            _bits[index >> 3] |= mask;
            SetCount++;
        }
    }

    /// <summary>Marks chunk <paramref name="index"/> absent.</summary>
    public void Clear(long index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, ChunkCount);
        var mask = (byte)(0x80 >> (int)(index & 7));
        if ((_bits[index >> 3] & mask) != 0)
        {
            _bits[index >> 3] &= (byte)~mask;
            SetCount--;
        }
    }

    private static long CountBits(ReadOnlySpan<byte> bits)
    {
        long count = 0;
        foreach (var b in bits)
        {
            count += BitOperations.PopCount(b);
        }
        return count;
    }
}
