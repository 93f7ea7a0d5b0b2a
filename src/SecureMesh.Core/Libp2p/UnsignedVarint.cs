namespace SecureMesh.Core.Libp2p;

// TODO(varint): use Wire.Varint after merge
/// <summary>
/// The multiformats unsigned varint (LEB128, at most 9 bytes, minimal encoding only), as libp2p's length prefixes use it.
/// </summary>
internal static class UnsignedVarint
{
    /// <summary>The longest encoding multiformats allows (63 bits of value).</summary>
    public const int MaxLength = 9;

    /// <summary>Bytes needed to encode <paramref name="value"/>.</summary>
    public static int Size(ulong value)
    {
        var size = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            size++;
        }
        return size;
    }

    /// <summary>Writes <paramref name="value"/> at the start of <paramref name="destination"/>; returns the bytes written.</summary>
    public static int Write(Span<byte> destination, ulong value)
    {
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
    /// Reads a varint from the start of <paramref name="source"/>. False with <paramref name="consumed"/> 0 when more bytes
    /// are needed; throws <see cref="SecureMeshException"/> (Protocol) when it is too long or not minimally encoded.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out ulong value, out int consumed)
    {
        value = 0;
        consumed = 0;
        for (var i = 0; i < source.Length; i++)
        {
            if (i == MaxLength)
            {
                throw Invalid("a varint is longer than 9 bytes");
            }
            var b = source[i];
            value |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                {
                    throw Invalid("a varint is not minimally encoded");
                }
                consumed = i + 1;
                return true;
            }
        }
        if (source.Length >= MaxLength)
        {
            throw Invalid("a varint is longer than 9 bytes");
        }
        value = 0;
        return false;
    }

    private static SecureMeshException Invalid(string reason) => new(SecureMeshErrorKind.Protocol, reason);
}
