using System.Security.Cryptography;
using NSec.Cryptography;

namespace SecureMesh.Core.Noise;

/// <summary>An X25519 key pair (NSec). Dispose wipes the private key.</summary>
internal sealed class X25519KeyPair : IDisposable
{
    public const int KeyLength = 32;
    private static readonly KeyAgreementAlgorithm Algorithm = KeyAgreementAlgorithm.X25519;

    private readonly Key _key;

    private X25519KeyPair(Key key)
    {
        _key = key;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
    }

    public byte[] PublicKey { get; }

    public static X25519KeyPair Generate() => new(Key.Create(Algorithm));

    /// <summary>Test seam: a fixed private key (published test vectors).</summary>
    internal static X25519KeyPair FromPrivateKey(ReadOnlySpan<byte> privateKey) =>
        new(Key.Import(Algorithm, privateKey, KeyBlobFormat.RawPrivateKey));

    /// <summary>DH(self, remote) into a 32-byte buffer; false when the remote key is malformed or gives the all-zero secret.</summary>
    public bool TryAgree(ReadOnlySpan<byte> remotePublicKey, Span<byte> sharedSecret)
    {
        if (remotePublicKey.Length != KeyLength || sharedSecret.Length != KeyLength)
        {
            return false;
        }
        if (!NSec.Cryptography.PublicKey.TryImport(Algorithm, remotePublicKey, KeyBlobFormat.RawPublicKey, out var remote) || remote is null)
        {
            return false;
        }
        using var secret = Algorithm.Agree(_key, remote, new SharedSecretCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        if (secret is null)
        {
            return false;
        }
        var raw = secret.Export(SharedSecretBlobFormat.RawSharedSecret);
        try
        {
            if (raw.Length != KeyLength)
            {
                return false;
            }
            raw.CopyTo(sharedSecret);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    public void Dispose() => _key.Dispose();
}
