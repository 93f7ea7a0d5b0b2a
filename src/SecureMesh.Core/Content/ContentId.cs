using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace SecureMesh.Core.Content;

/// <summary>
/// A content ID: <c>"b3:"</c> followed by the 32-byte content root (see <see cref="MerkleTree"/>) in lowercase
/// RFC 4648 base32 without padding, 55 characters in all. Only that canonical spelling is accepted, so two IDs are
/// equal exactly when their strings are.
/// </summary>
public sealed class ContentId : IEquatable<ContentId>
{
    /// <summary>Length of the root hash.</summary>
    public const int HashLength = 32;

    /// <summary>The algorithm prefix.</summary>
    public const string Prefix = "b3:";

    /// <summary>Length of the text form.</summary>
    public const int TextLength = 55;

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    private const int Base32Length = 52;

    private readonly byte[] _hash;
    private readonly string _text;

    private ContentId(byte[] hash, string text)
    {
        _hash = hash;
        _text = text;
    }

    /// <summary>The 32-byte root.</summary>
    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>The canonical text form.</summary>
    public string Text => _text;

    /// <summary>Wraps a 32-byte root.</summary>
    public static ContentId FromHash(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != HashLength)
        {
            throw new ArgumentException("A content root is 32 bytes.", nameof(hash));
        }
        var copy = hash.ToArray();
        return new ContentId(copy, Encode(copy));
    }

    /// <summary>Parses the canonical text form; throws <see cref="SecureMeshException"/> (InvalidInput) with the reason.</summary>
    public static ContentId Parse(string? text)
    {
        if (TryParse(text, out var id, out var error))
        {
            return id;
        }
        throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, error);
    }

    /// <summary>Parses the canonical text form.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out ContentId? id) => TryParse(text, out id, out _);

    /// <summary>Parses the canonical text form, giving the reason on failure.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out ContentId? id, out string error)
    {
        id = null;
        Span<byte> hash = stackalloc byte[HashLength];
        if (!TryDecode(text, hash, out error))
        {
            return false;
        }
        id = new ContentId(hash.ToArray(), text!);
        return true;
    }

    /// <summary>True when <paramref name="text"/> is a canonical content ID; for validating input without keeping the ID.</summary>
    public static bool IsValid(string? text, out string error)
    {
        Span<byte> hash = stackalloc byte[HashLength];
        return TryDecode(text, hash, out error);
    }

    /// <summary>True when <paramref name="text"/> is a canonical content ID.</summary>
    public static bool IsValid(string? text) => IsValid(text, out _);

    /// <summary>Compares the root with <paramref name="hash"/> in constant time.</summary>
    public bool HashEquals(ReadOnlySpan<byte> hash) =>
        hash.Length == HashLength && CryptographicOperations.FixedTimeEquals(_hash, hash);

    private static bool TryDecode(string? text, Span<byte> hash, out string error)
    {
        if (string.IsNullOrEmpty(text))
        {
            error = "invalid content ID: empty";
            return false;
        }
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = $"invalid content ID {Describe(text)}: must start with '{Prefix}'";
            return false;
        }
        if (text.Length != TextLength)
        {
            error = $"invalid content ID {Describe(text)}: expected {TextLength} characters, got {text.Length}";
            return false;
        }
        ulong buffer = 0;
        var bits = 0;
        var written = 0;
        for (var i = Prefix.Length; i < text.Length; i++)
        {
            var c = text[i];
            int value;
            if (c >= 'a' && c <= 'z')
            {
                value = c - 'a';
            }
            else if (c >= '2' && c <= '7')
            {
                value = c - '2' + 26;
            }
            else
            {
                error = $"invalid content ID {Describe(text)}: character {i + 1} is not lowercase base32 (a-z, 2-7)";
                return false;
            }
            buffer = (buffer << 5) | (uint)value;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                hash[written++] = (byte)(buffer >> bits);
            }
        }
        // 52 characters carry 260 bits; the 4 spare bits must be zero so each root has one spelling.
        if ((buffer & ((1UL << bits) - 1)) != 0)
        {
            error = $"invalid content ID {Describe(text)}: not canonical base32 (non-zero trailing bits)";
            return false;
        }
        error = string.Empty;
        return true;
    }

    private static string Encode(ReadOnlySpan<byte> hash)
    {
        Span<char> chars = stackalloc char[TextLength];
        Prefix.AsSpan().CopyTo(chars);
        ulong buffer = 0;
        var bits = 0;
        var pos = Prefix.Length;
        foreach (var b in hash)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                chars[pos++] = Alphabet[(int)((buffer >> bits) & 31)];
            }
        }
        if (bits > 0)
        {
            chars[pos++] = Alphabet[(int)((buffer << (5 - bits)) & 31)];
        }
        System.Diagnostics.Debug.Assert(pos == Prefix.Length + Base32Length);
        return new string(chars);
    }

    private static string Describe(string text)
    {
        // Never echo control characters or a huge string back to a terminal.
        var length = Math.Min(text.Length, 60);
        Span<char> clean = stackalloc char[length];
        for (var i = 0; i < length; i++)
        {
            clean[i] = char.IsControl(text[i]) ? '?' : text[i];
        }
        return text.Length > 60 ? $"'{clean}…'" : $"'{clean}'";
    }

    /// <inheritdoc/>
    public bool Equals(ContentId? other) => other is not null && _hash.AsSpan().SequenceEqual(other._hash);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ContentId);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        // IDs arrive from peers with bytes of their choosing: a per-process seeded hash keeps dictionaries safe from collisions.
        var hash = default(HashCode);
        hash.AddBytes(_hash);
        return hash.ToHashCode();
    }

    /// <summary>Equality by root.</summary>
    public static bool operator ==(ContentId? left, ContentId? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Inequality by root.</summary>
    public static bool operator !=(ContentId? left, ContentId? right) => !(left == right);

    /// <inheritdoc/>
    public override string ToString() => _text;
}
