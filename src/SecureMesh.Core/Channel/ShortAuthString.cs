using System.Security.Cryptography;

namespace SecureMesh.Core.Channel;

/// <summary>
/// A short authentication string: five words (40 bits) derived from the Noise handshake hash, identical on both
/// ends of one connection, so two people can read them to each other and detect a man in the middle.
/// </summary>
public static class ShortAuthString
{
    /// <summary>Number of words produced.</summary>
    public const int WordCount = 5;

    private static ReadOnlySpan<byte> Domain => "securemesh short authentication string v1\0"u8;

    private static readonly string[] Words = LoadWords();

    /// <summary>Five words separated by spaces, from a 32-byte handshake hash.</summary>
    public static string From(byte[] handshakeHash)
    {
        ArgumentNullException.ThrowIfNull(handshakeHash);
        if (handshakeHash.Length != 32)
        {
            throw new ArgumentException("A handshake hash is 32 bytes.", nameof(handshakeHash));
        }
        // Domain-separated so the words reveal nothing reusable about the hash itself.
        Span<byte> digest = stackalloc byte[32];
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            hash.AppendData(Domain);
            hash.AppendData(handshakeHash);
            hash.GetHashAndReset(digest);
        }
        var words = new string[WordCount];
        for (var i = 0; i < WordCount; i++)
        {
            words[i] = Words[digest[i]];
        }
        return string.Join(' ', words);
    }

    private static string[] LoadWords()
    {
        using var stream = typeof(ShortAuthString).Assembly.GetManifestResourceStream("SecureMesh.Core.Channel.ShortAuthWords.txt")
            ?? throw new InvalidOperationException("The word list resource is missing.");
        using var reader = new StreamReader(stream);
        var words = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Length != 256 || words.Distinct(StringComparer.Ordinal).Count() != 256)
        {
            throw new InvalidOperationException("The word list must hold 256 distinct words.");
        }
        return words;
    }
}
