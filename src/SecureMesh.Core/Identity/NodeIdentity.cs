using NSec.Cryptography;

namespace SecureMesh.Core.Identity;

/// <summary>
/// A node's Ed25519 identity key pair. Holds the private key; dispose it to wipe it.
/// The private key never appears in <see cref="ToString"/> or in any exception message.
/// </summary>
public sealed class NodeIdentity : IDisposable
{
    /// <summary>Length of the Ed25519 private seed.</summary>
    public const int SeedLength = 32;

    /// <summary>Length of an Ed25519 signature.</summary>
    public const int SignatureLength = 64;

    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;
    private readonly Key _key;

    private NodeIdentity(Key key)
    {
        _key = key;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        PeerId = PeerId.FromPublicKey(PublicKey);
    }

    /// <summary>The raw 32-byte public key.</summary>
    public byte[] PublicKey { get; }

    /// <summary>The libp2p Peer ID of the key.</summary>
    public PeerId PeerId { get; }

    /// <summary>Creates a fresh random identity.</summary>
    public static NodeIdentity Generate() =>
        new(Key.Create(Algorithm, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>Rebuilds an identity from its 32-byte private seed.</summary>
    public static NodeIdentity FromSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != SeedLength)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Identity, "an Ed25519 private key is 32 bytes");
        }
        return new NodeIdentity(Key.Import(Algorithm, seed, KeyBlobFormat.RawPrivateKey,
            new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));
    }

    /// <summary>Writes the 32-byte private seed into <paramref name="destination"/>; the caller wipes it.</summary>
    public void ExportSeed(Span<byte> destination)
    {
        if (destination.Length != SeedLength)
        {
            throw new ArgumentException("The seed buffer must be 32 bytes.", nameof(destination));
        }
        var blob = _key.Export(KeyBlobFormat.RawPrivateKey);
        try
        {
            blob.CopyTo(destination);
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(blob);
        }
    }

    /// <summary>Signs <paramref name="data"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => Algorithm.Sign(_key, data);

    /// <summary>Signs <paramref name="data"/> into a 64-byte buffer.</summary>
    public void Sign(ReadOnlySpan<byte> data, Span<byte> signature) => Algorithm.Sign(_key, data, signature);

    /// <summary>Verifies an Ed25519 signature by <paramref name="publicKey"/>; false for any malformed input.</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        if (publicKey.Length != PeerId.PublicKeyLength || signature.Length != SignatureLength)
        {
            return false;
        }
        if (!NSec.Cryptography.PublicKey.TryImport(Algorithm, publicKey, KeyBlobFormat.RawPublicKey, out var key) || key is null)
        {
            return false;
        }
        return Algorithm.Verify(key, data, signature);
    }

    /// <inheritdoc/>
    public override string ToString() => $"NodeIdentity({PeerId})";

    /// <inheritdoc/>
    public void Dispose() => _key.Dispose();
}
