using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace SecureMesh.Core.Noise;

/// <summary>
/// An X25519 key pair. The arithmetic is libsodium's (<c>crypto_scalarmult_curve25519</c>, the same library and
/// function NSec's <c>KeyAgreementAlgorithm.X25519</c> calls); the private scalar lives in a pinned array wiped on
/// dispose. NSec's own key and shared-secret objects each take guarded, locked pages from the kernel, and a handshake
/// made eight of them: that system-call and page-table work cost more than the curve arithmetic itself.
/// </summary>
internal sealed partial class X25519KeyPair : IDisposable
{
    public const int KeyLength = 32;

    private static readonly bool Initialized = sodium_init() >= 0;

    private readonly byte[] _private;
    private int _disposed;

    private unsafe X25519KeyPair(byte[] pinnedPrivate)
    {
        if (!Initialized)
        {
            throw new CryptographicException("libsodium could not be initialized");
        }
        _private = pinnedPrivate;
        PublicKey = new byte[KeyLength];
        fixed (byte* q = PublicKey)
        fixed (byte* n = _private)
        {
            if (crypto_scalarmult_curve25519_base(q, n) != 0)
            {
                throw new CryptographicException("X25519 public key derivation failed");
            }
        }
    }

    public byte[] PublicKey { get; }

    public static X25519KeyPair Generate()
    {
        var secret = GC.AllocateUninitializedArray<byte>(KeyLength, pinned: true);
        RandomNumberGenerator.Fill(secret);
        return new X25519KeyPair(secret);
    }

    /// <summary>Test seam: a fixed private key (published test vectors).</summary>
    internal static X25519KeyPair FromPrivateKey(ReadOnlySpan<byte> privateKey)
    {
        if (privateKey.Length != KeyLength)
        {
            throw new ArgumentException("An X25519 private key is 32 bytes.", nameof(privateKey));
        }
        var secret = GC.AllocateUninitializedArray<byte>(KeyLength, pinned: true);
        privateKey.CopyTo(secret);
        return new X25519KeyPair(secret);
    }

    /// <summary>DH(self, remote) into a 32-byte buffer; false when the remote key is malformed or gives the all-zero secret.</summary>
    public unsafe bool TryAgree(ReadOnlySpan<byte> remotePublicKey, Span<byte> sharedSecret)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (remotePublicKey.Length != KeyLength || sharedSecret.Length != KeyLength)
        {
            return false;
        }
        fixed (byte* q = sharedSecret)
        fixed (byte* n = _private)
        fixed (byte* p = remotePublicKey)
        {
            // libsodium returns -1 when the result is all zeros (a low-order remote point), as RFC 7748 advises to check.
            if (crypto_scalarmult_curve25519(q, n, p) != 0)
            {
                CryptographicOperations.ZeroMemory(sharedSecret);
                return false;
            }
        }
        return true;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            CryptographicOperations.ZeroMemory(_private);
        }
    }

    [LibraryImport("libsodium")]
    private static partial int sodium_init();

    [LibraryImport("libsodium")]
    private static unsafe partial int crypto_scalarmult_curve25519(byte* q, byte* n, byte* p);

    [LibraryImport("libsodium")]
    private static unsafe partial int crypto_scalarmult_curve25519_base(byte* q, byte* n);
}
