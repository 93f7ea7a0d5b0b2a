using System.Security.Cryptography;

namespace SecureMesh.Core.Noise;

/// <summary>A Noise SymmetricState over SHA-256 (Noise rev 34 §5.2): chaining key, handshake hash and a CipherState.</summary>
internal sealed class SymmetricState : IDisposable
{
    public const int HashLength = 32;

    private readonly byte[] _ck = new byte[HashLength];
    private readonly byte[] _h = new byte[HashLength];
    private readonly CipherState _cipher = new();

    public SymmetricState(ReadOnlySpan<byte> protocolName)
    {
        if (protocolName.Length <= HashLength)
        {
            _h.AsSpan().Clear();
            protocolName.CopyTo(_h);
        }
        else
        {
            SHA256.HashData(protocolName, _h);
        }
        _h.CopyTo(_ck, 0);
    }

    public ReadOnlySpan<byte> HandshakeHash => _h;

    public bool HasKey => _cipher.HasKey;

    public void MixHash(ReadOnlySpan<byte> data)
    {
        if (data.Length <= 512)
        {
            // The common case (keys, small payloads): one-shot hash, no allocation.
            Span<byte> input = stackalloc byte[HashLength + 512];
            _h.CopyTo(input);
            data.CopyTo(input[HashLength..]);
            SHA256.HashData(input[..(HashLength + data.Length)], _h);
            return;
        }
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(_h);
        hash.AppendData(data);
        hash.GetHashAndReset(_h);
    }

    /// <summary>ck, temp_k = HKDF(ck, ikm); InitializeKey(temp_k). Noise's HKDF is RFC 5869 with an empty info.</summary>
    public void MixKey(ReadOnlySpan<byte> inputKeyMaterial)
    {
        Span<byte> output = stackalloc byte[2 * HashLength];
        try
        {
            Hkdf(_ck, inputKeyMaterial, output);
            output[..HashLength].CopyTo(_ck);
            _cipher.InitializeKey(output[HashLength..]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    public int EncryptAndHash(ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        var written = _cipher.EncryptWithAd(_h, plaintext, ciphertext);
        MixHash(ciphertext[..written]);
        return written;
    }

    public bool TryDecryptAndHash(ReadOnlySpan<byte> ciphertext, Span<byte> plaintext, out int written)
    {
        if (!_cipher.TryDecryptWithAd(_h, ciphertext, plaintext, out written))
        {
            return false;
        }
        MixHash(ciphertext);
        return true;
    }

    /// <summary>The two transport CipherStates: (initiator→responder, responder→initiator).</summary>
    public (CipherState First, CipherState Second) Split()
    {
        Span<byte> output = stackalloc byte[2 * HashLength];
        try
        {
            Hkdf(_ck, default, output);
            var c1 = new CipherState();
            var c2 = new CipherState();
            c1.InitializeKey(output[..HashLength]);
            c2.InitializeKey(output[HashLength..]);
            return (c1, c2);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(output);
        }
    }

    /// <summary>
    /// Noise's HKDF with two outputs (rev 34 §4.3), written over HMAC-SHA256 because the platform HKDF
    /// (OpenSSL) rejects the empty input key material that Split uses.
    /// </summary>
    internal static void Hkdf(ReadOnlySpan<byte> chainingKey, ReadOnlySpan<byte> inputKeyMaterial, Span<byte> output)
    {
        Span<byte> tempKey = stackalloc byte[HashLength];
        Span<byte> block = stackalloc byte[HashLength + 1];
        try
        {
            HMACSHA256.HashData(chainingKey, inputKeyMaterial, tempKey);
            block[0] = 0x01;
            HMACSHA256.HashData(tempKey, block[..1], output[..HashLength]);
            output[..HashLength].CopyTo(block);
            block[HashLength] = 0x02;
            HMACSHA256.HashData(tempKey, block, output.Slice(HashLength, HashLength));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(tempKey);
            CryptographicOperations.ZeroMemory(block);
        }
    }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_ck);
        CryptographicOperations.ZeroMemory(_h);
        _cipher.Dispose();
    }
}
