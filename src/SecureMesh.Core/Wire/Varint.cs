namespace SecureMesh.Core.Wire;

/// <summary>
/// Unsigned LEB128 varints: seven bits a byte, least significant group first, the high bit set on every byte but the
/// last. The one varint helper of the project. Two limits: the multiformats unsigned-varint (multistream-select,
/// multiaddr, libp2p length prefixes) allows at most 9 bytes (63 bits); protobuf (Noise payload, identify) and our
/// wire schema allow 10 bytes (64 bits). Both readers refuse encodings that are not minimal (a trailing 0x00
/// continuation makes the number ambiguous; the multiformats spec forbids it and no protobuf encoder writes it).
/// </summary>
public static class Varint
{
    /// <summary>The longest multiformats unsigned varint: 9 bytes, 63 bits.</summary>
    public const int MaxLength = 9;

    /// <summary>The longest encoding of a 64-bit value (protobuf).</summary>
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
    /// Reads a multiformats unsigned varint (at most <see cref="MaxLength"/> bytes) from the start of
    /// <paramref name="source"/>. Returns false when the source ends before the varint does (read more and try
    /// again); <paramref name="consumed"/> is then 0.
    /// </summary>
    /// <exception cref="SecureMeshException">Kind Protocol: the encoding is not minimal or longer than 9 bytes.</exception>
    public static bool TryRead(ReadOnlySpan<byte> source, out ulong value, out int consumed) =>
        Complete(Decode(source, MaxLength, out value, out consumed), MaxLength);

    /// <summary>As <see cref="TryRead"/> for a protobuf varint: at most <see cref="MaxLength64"/> bytes, 64 bits.</summary>
    /// <exception cref="SecureMeshException">Kind Protocol: the encoding is not minimal or does not fit 64 bits.</exception>
    public static bool TryRead64(ReadOnlySpan<byte> source, out ulong value, out int consumed) =>
        Complete(Decode(source, MaxLength64, out value, out consumed), MaxLength64);

    /// <summary>
    /// Decodes one varint of at most <paramref name="maxLength"/> bytes (<see cref="MaxLength"/> or
    /// <see cref="MaxLength64"/>) without throwing; <paramref name="value"/> and <paramref name="consumed"/> are 0
    /// unless the result is <see cref="VarintStatus.Ok"/>.
    /// </summary>
    public static VarintStatus Decode(ReadOnlySpan<byte> source, int maxLength, out ulong value, out int consumed)
    {
        if (maxLength is not (MaxLength or MaxLength64))
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), "a varint is at most 9 (multiformats) or 10 (protobuf) bytes");
        }
        value = 0;
        consumed = 0;
        ulong result = 0;
        for (var i = 0; i < maxLength; i++)
        {
            if (i >= source.Length)
            {
                return VarintStatus.Truncated;
            }
            var b = source[i];
            // The tenth byte of a 64-bit varint carries only bit 63.
            if (i == MaxLength64 - 1 && b > 1)
            {
                return VarintStatus.TooLong;
            }
            result |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                {
                    return VarintStatus.NotMinimal;
                }
                value = result;
                consumed = i + 1;
                return VarintStatus.Ok;
            }
        }
        return VarintStatus.TooLong;
    }

    /// <summary>A short English reason for a failed <see cref="Decode"/>, for error messages.</summary>
    public static string Describe(VarintStatus status, int maxLength) => status switch
    {
        VarintStatus.Truncated => "truncated varint",
        VarintStatus.NotMinimal => "varint is not minimally encoded",
        VarintStatus.TooLong => maxLength == MaxLength64 ? "varint overflows 64 bits" : $"varint longer than {maxLength} bytes",
        _ => "varint is valid",
    };

    private static bool Complete(VarintStatus status, int maxLength) => status switch
    {
        VarintStatus.Ok => true,
        VarintStatus.Truncated => false,
        _ => throw new SecureMeshException(SecureMeshErrorKind.Protocol, Describe(status, maxLength)),
    };
}

/// <summary>The outcome of <see cref="Varint.Decode"/>.</summary>
public enum VarintStatus
{
    /// <summary>A complete, minimal varint within the length limit.</summary>
    Ok,

    /// <summary>The input ends before the varint does.</summary>
    Truncated,

    /// <summary>A trailing zero continuation: the same number has a shorter encoding.</summary>
    NotMinimal,

    /// <summary>Longer than the limit, or a 64-bit varint whose tenth byte overflows.</summary>
    TooLong,
}
