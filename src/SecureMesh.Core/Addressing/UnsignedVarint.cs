namespace SecureMesh.Core.Addressing;

/// <summary>
/// The multiformats unsigned varint (multiformats/unsigned-varint): LEB128, at most 9 bytes (63 bits), and
/// minimally encoded: a trailing 0x00 continuation byte makes the number ambiguous and is refused.
/// </summary>
internal static class UnsignedVarint
{
    /// <summary>Longest encoding the spec allows.</summary>
    public const int MaxLength = 9;

    /// <summary>Bytes <paramref name="value"/> takes.</summary>
    public static int Length(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }
        return n;
    }

    /// <summary>Writes <paramref name="value"/> (below 2^63) at the start of <paramref name="output"/>; returns the bytes written.</summary>
    public static int Write(ulong value, Span<byte> output)
    {
        if (value > long.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(value), "an unsigned varint holds at most 63 bits");
        }
        var i = 0;
        while (value >= 0x80)
        {
            output[i++] = (byte)(value | 0x80);
            value >>= 7;
        }
        output[i++] = (byte)value;
        return i;
    }

    /// <summary>Reads one varint from the start of <paramref name="input"/>; false with a reason when it is truncated, too long or not minimal.</summary>
    public static bool TryRead(ReadOnlySpan<byte> input, out ulong value, out int length, out string error)
    {
        value = 0;
        length = 0;
        for (var i = 0; i < MaxLength; i++)
        {
            if (i >= input.Length)
            {
                error = "truncated varint";
                return false;
            }
            var b = input[i];
            value |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                if (b == 0 && i > 0)
                {
                    value = 0;
                    error = "varint is not minimally encoded";
                    return false;
                }
                length = i + 1;
                error = string.Empty;
                return true;
            }
        }
        value = 0;
        error = $"varint longer than {MaxLength} bytes";
        return false;
    }
}
