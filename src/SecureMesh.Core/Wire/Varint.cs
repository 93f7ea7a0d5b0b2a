namespace SecureMesh.Core.Wire;

/// <summary>
/// Unsigned LEB128 varints as multiformats (multistream-select, multiaddr) and protobuf write them: seven bits a
/// byte, least significant group first, the high bit set on every byte but the last. The one varint helper of the
/// project; readers reject encodings that are not minimal or do not fit 64 bits.
/// </summary>
public static class Varint
{
    /// <summary>The longest encoding of a 64-bit value.</summary>
    public const int MaxLength64 = 10;

    /// <summary>The number of bytes <see cref="Write"/> needs for <paramref name="value"/> (1..10).</summary>
    public static int Size(ulong value)
    {
        // 1 byte for 0..127, one more for every further 7 bits.
        var bits = 64 - System.Numerics.BitOperations.LeadingZeroCount(value | 1);
        return (bits + 6) / 7;
    }

    /// <summary>Writes <paramref name="value"/> minimally and returns the number of bytes written.</summary>
    /// <exception cref="ArgumentException">The destination is shorter than <see cref="Size"/>.</exception>
    public static int Write(Span<byte> destination, ulong value)
    {
        var size = Size(value);
        if (destination.Length < size)
        {
            throw new ArgumentException("destination too short for the varint", nameof(destination));
        }
        var i = 0;
        while (value >= 0x80)
        {
            destination[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[i++] = (byte)value;
        return i;
    }

    /// <summary>
    /// Reads a varint from the start of <paramref name="source"/>. Returns false when the source ends before the
    /// varint does (read more and try again); <paramref name="consumed"/> is then 0.
    /// </summary>
    /// <exception cref="SecureMeshException">Kind Protocol: the encoding is not minimal or does not fit 64 bits.</exception>
    public static bool TryRead(ReadOnlySpan<byte> source, out ulong value, out int consumed)
    {
        ulong result = 0;
        var limit = Math.Min(source.Length, MaxLength64);
        for (var i = 0; i < limit; i++)
        {
            var b = source[i];
            if (i == MaxLength64 - 1 && b > 1)
            {
                throw Malformed("varint overflows 64 bits");
            }
            result |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                {
                    throw Malformed("varint is not minimally encoded");
                }
                value = result;
                consumed = i + 1;
                return true;
            }
        }
        // The tenth byte either ended the varint or failed the overflow check above, so only a short source gets here.
        value = 0;
        consumed = 0;
        return false;
    }

    private static SecureMeshException Malformed(string reason) => new(SecureMeshErrorKind.Protocol, reason);
}
