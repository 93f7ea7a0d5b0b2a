using System.Security.Cryptography;
using System.Text;

namespace SecureMesh.Core.Identity;

/// <summary>
/// A short, human-comparable fingerprint of an Ed25519 public key: 100 bits of SHA-256 over the
/// libp2p protobuf key, in five groups of four base32 characters (<c>k7qm-3xdf-…</c>).
/// </summary>
public static class Fingerprint
{
    // RFC 4648 base32, lower case: no 0/1/8/9 so nothing reads as O/l/B/g.
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>The fingerprint of a 32-byte Ed25519 public key.</summary>
    public static string Of(ReadOnlySpan<byte> publicKey)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(PeerId.EncodeProtobufPublicKey(publicKey), digest);
        return Group(Base32(digest[..13]), 20);
    }

    internal static string Base32(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder((data.Length * 8 + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        if (bits > 0)
        {
            sb.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }
        return sb.ToString();
    }

    private static string Group(string text, int length)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < length; i++)
        {
            if (i > 0 && i % 4 == 0)
            {
                sb.Append('-');
            }
            sb.Append(text[i]);
        }
        return sb.ToString();
    }
}
