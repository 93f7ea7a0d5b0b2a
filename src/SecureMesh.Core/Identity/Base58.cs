using System.Text;

namespace SecureMesh.Core.Identity;

/// <summary>Base58btc (the Bitcoin alphabet), as multibase 'z' and libp2p Peer IDs use it.</summary>
public static class Base58
{
    private const string Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    private static readonly sbyte[] Map = BuildMap();

    /// <summary>The longest string <see cref="TryDecode"/> accepts; Peer IDs are far shorter.</summary>
    public const int MaxEncodedLength = 256;

    private static sbyte[] BuildMap()
    {
        var map = new sbyte[128];
        Array.Fill(map, (sbyte)-1);
        for (var i = 0; i < Alphabet.Length; i++)
        {
            map[Alphabet[i]] = (sbyte)i;
        }
        return map;
    }

    /// <summary>Encodes bytes as base58btc.</summary>
    public static string Encode(ReadOnlySpan<byte> data)
    {
        var zeros = 0;
        while (zeros < data.Length && data[zeros] == 0)
        {
            zeros++;
        }
        // log(256)/log(58) ≈ 1.366
        var size = ((data.Length - zeros) * 138 / 100) + 1;
        Span<byte> buf = size <= 256 ? stackalloc byte[size] : new byte[size];
        buf.Clear();
        var length = 0;
        for (var i = zeros; i < data.Length; i++)
        {
            int carry = data[i];
            var j = 0;
            for (var k = size - 1; (carry != 0 || j < length) && k >= 0; k--, j++)
            {
                carry += 256 * buf[k];
                buf[k] = (byte)(carry % 58);
                carry /= 58;
            }
            length = j;
        }
        var start = size - length;
        while (start < size && buf[start] == 0)
        {
            start++;
        }
        var sb = new StringBuilder(zeros + size - start);
        sb.Append('1', zeros);
        for (var i = start; i < size; i++)
        {
            sb.Append(Alphabet[buf[i]]);
        }
        return sb.ToString();
    }

    /// <summary>Decodes base58btc; false for any character outside the alphabet or an over-long input.</summary>
    public static bool TryDecode(string text, out byte[] result)
    {
        result = [];
        if (text.Length == 0 || text.Length > MaxEncodedLength)
        {
            return false;
        }
        var zeros = 0;
        while (zeros < text.Length && text[zeros] == '1')
        {
            zeros++;
        }
        // Base-58 digits into base-256 bytes in place (log(58)/log(256) ≈ 0.733), as Encode does the other way: no
        // BigInteger, whose every step allocated (a node's connector parses each trusted peer's ID once a second).
        var size = ((text.Length - zeros) * 733 / 1000) + 1;
        Span<byte> buf = stackalloc byte[size];
        buf.Clear();
        var length = 0;
        for (var i = zeros; i < text.Length; i++)
        {
            var c = text[i];
            if (c >= 128 || Map[c] < 0)
            {
                return false;
            }
            int carry = Map[c];
            var j = 0;
            for (var k = size - 1; (carry != 0 || j < length) && k >= 0; k--, j++)
            {
                carry += 58 * buf[k];
                buf[k] = (byte)carry;
                carry >>= 8;
            }
            length = j;
        }
        var start = size - length;
        while (start < size && buf[start] == 0)
        {
            start++;
        }
        var body = buf[start..];
        result = new byte[zeros + body.Length];
        body.CopyTo(result.AsSpan(zeros));
        return true;
    }
}
