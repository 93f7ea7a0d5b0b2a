namespace SecureMesh.Core.Noise;

/// <summary>
/// The two transport CipherStates after <see cref="HandshakeState.Split"/>.
/// Nonce policy: the libp2p Noise spec defines no rekey message, so a one-sided REKEY would break interop
/// with other libp2p implementations. Instead a direction refuses to go past <see cref="NonceLimit"/> (2^60)
/// messages and the connection is closed: at one 64 KiB frame per message that is 2^76 bytes, far beyond any
/// real connection, and far from the 2^64-1 nonce Noise reserves.
/// </summary>
internal sealed class TransportState : IDisposable
{
    public const ulong NonceLimit = 1UL << 60;

    private readonly CipherState _send;
    private readonly CipherState _receive;

    internal TransportState(CipherState send, CipherState receive, byte[] handshakeHash)
    {
        _send = send;
        _receive = receive;
        HandshakeHash = handshakeHash;
    }

    public byte[] HandshakeHash { get; }

    internal CipherState SendCipher => _send;

    internal CipherState ReceiveCipher => _receive;

    /// <summary>Encrypts one transport message (plaintext ≤ 65519 bytes); returns the ciphertext length.</summary>
    public int Encrypt(ReadOnlySpan<byte> plaintext, Span<byte> ciphertext)
    {
        if (_send.Nonce >= NonceLimit)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "connection used up its nonces; it must be re-established");
        }
        return _send.EncryptWithAd(default, plaintext, ciphertext);
    }

    /// <summary>Decrypts one transport message; false on any authentication failure.</summary>
    public bool TryDecrypt(ReadOnlySpan<byte> ciphertext, Span<byte> plaintext, out int written)
    {
        written = 0;
        return _receive.Nonce < NonceLimit && _receive.TryDecryptWithAd(default, ciphertext, plaintext, out written);
    }

    public void Dispose()
    {
        _send.Dispose();
        _receive.Dispose();
    }
}
