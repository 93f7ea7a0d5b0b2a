using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecureMesh.Core.Noise;

/// <summary>
/// A Noise CipherState for ChaChaPoly: a 32-byte key and a 64-bit nonce (Noise rev 34 §5.1).
/// The AEAD is the base library's ChaCha20-Poly1305 (OpenSSL), measured faster than NSec's here.
/// </summary>
internal sealed class CipherState : IDisposable
{
    public const int KeyLength = 32;
    public const int TagLength = 16;

    /// <summary>2^64-1 is reserved by the Noise spec; we refuse to go near it (see <see cref="TransportState"/>).</summary>
    private const ulong ReservedNonce = ulong.MaxValue;

    private readonly byte[] _key = new byte[KeyLength];
    private ChaCha20Poly1305? _aead;
    private ulong _nonce;

    public bool HasKey => _aead is not null;

    public ulong Nonce => _nonce;

    public void InitializeKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeyLength)
        {
            throw new ArgumentException("A Noise cipher key is 32 bytes.", nameof(key));
        }
        key.CopyTo(_key);
        _aead?.Dispose();
        _aead = new ChaCha20Poly1305(_key);
        _nonce = 0;
    }

    /// <summary>Test seam: lets tests jump the nonce to check the exhaustion guard.</summary>
    internal void SetNonceForTest(ulong nonce) => _nonce = nonce;

    /// <summary>ENCRYPT(k, n++, ad, plaintext); without a key, the plaintext is copied. Returns bytes written.</summary>
    public int EncryptWithAd(ReadOnlySpan<byte> ad, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        if (_aead is null)
        {
            plaintext.CopyTo(ciphertext);
            return plaintext.Length;
        }
        if (_nonce == ReservedNonce)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "Noise nonce exhausted");
        }
        Span<byte> nonce = stackalloc byte[12];
        WriteNonce(nonce, _nonce);
        _aead.Encrypt(nonce, plaintext, ciphertext[..plaintext.Length], ciphertext.Slice(plaintext.Length, TagLength), ad);
        _nonce++;
        return plaintext.Length + TagLength;
    }

    /// <summary>DECRYPT(k, n++, ad, ciphertext); false on an authentication failure (the nonce is then not advanced).</summary>
    public bool TryDecryptWithAd(ReadOnlySpan<byte> ad, ReadOnlySpan<byte> ciphertext, Span<byte> plaintext, out int written)
    {
        written = 0;
        if (_aead is null)
        {
            ciphertext.CopyTo(plaintext);
            written = ciphertext.Length;
            return true;
        }
        if (ciphertext.Length < TagLength || _nonce == ReservedNonce)
        {
            return false;
        }
        var length = ciphertext.Length - TagLength;
        Span<byte> nonce = stackalloc byte[12];
        WriteNonce(nonce, _nonce);
        try
        {
            _aead.Decrypt(nonce, ciphertext[..length], ciphertext[length..], plaintext[..length], ad);
        }
        catch (CryptographicException)
        {
            // Never leave unauthenticated plaintext behind.
            CryptographicOperations.ZeroMemory(plaintext[..length]);
            return false;
        }
        _nonce++;
        written = length;
        return true;
    }

    /// <summary>REKEY(k): k = ENCRYPT(k, 2^64-1, zerolen, zeros)[..32] (Noise rev 34 §4.2, §11.3).</summary>
    public void Rekey()
    {
        if (_aead is null)
        {
            throw new InvalidOperationException("No key to rekey.");
        }
        Span<byte> nonce = stackalloc byte[12];
        WriteNonce(nonce, ReservedNonce);
        Span<byte> zeros = stackalloc byte[KeyLength];
        zeros.Clear();
        Span<byte> next = stackalloc byte[KeyLength];
        Span<byte> tag = stackalloc byte[TagLength];
        try
        {
            _aead.Encrypt(nonce, zeros, next, tag, default);
            var n = _nonce;
            InitializeKey(next);
            _nonce = n;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(next);
        }
    }

    private static void WriteNonce(Span<byte> nonce, ulong n)
    {
        // ChaChaPoly: 32 bits of zeros followed by the little-endian 64-bit counter.
        nonce[..4].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(nonce[4..], n);
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_key);
        _aead?.Dispose();
        _aead = null;
    }
}
