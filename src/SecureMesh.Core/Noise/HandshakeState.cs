using System.Security.Cryptography;
using System.Text;

namespace SecureMesh.Core.Noise;

/// <summary>
/// The Noise XX handshake (<c>Noise_XX_25519_ChaChaPoly_SHA256</c>, Noise rev 34):
/// <code>
/// -> e
/// &lt;- e, ee, s, es
/// -> s, se
/// </code>
/// Only this pattern exists here, written out step by step. After the third message, <see cref="Split"/>
/// hands over a <see cref="TransportState"/> and wipes every handshake secret; nothing else can be done
/// with this object afterwards, so transport use before the handshake completes is impossible.
/// </summary>
internal sealed class HandshakeState : IDisposable
{
    public const string ProtocolName = "Noise_XX_25519_ChaChaPoly_SHA256";

    /// <summary>Noise messages are at most 65535 bytes (Noise rev 34 §3).</summary>
    public const int MaxMessageLength = 65535;

    private const int DhLength = X25519KeyPair.KeyLength;
    private const int TagLength = CipherState.TagLength;

    private static readonly byte[] ProtocolNameBytes = Encoding.ASCII.GetBytes(ProtocolName);

    private readonly SymmetricState _symmetric;
    private readonly X25519KeyPair _static;
    private readonly X25519KeyPair? _fixedEphemeral;
    private X25519KeyPair? _ephemeral;
    private readonly byte[] _remoteEphemeral = new byte[DhLength];
    private readonly byte[] _remoteStatic = new byte[DhLength];
    private int _step;
    private bool _failed;
    private bool _disposed;

    /// <summary>Starts a handshake. <paramref name="staticKey"/> stays owned by the caller (it is reused across handshakes).</summary>
    public HandshakeState(bool initiator, X25519KeyPair staticKey)
        : this(initiator, default, staticKey, null)
    {
    }

    /// <summary>
    /// Test seam: a prologue and a fixed ephemeral key, so published vectors can be replayed, and another protocol name,
    /// to play a peer that claims another Noise protocol (a downgrade). Takes ownership of the ephemeral key.
    /// </summary>
    internal HandshakeState(bool initiator, ReadOnlySpan<byte> prologue, X25519KeyPair staticKey, X25519KeyPair? fixedEphemeral, string? protocolName = null)
    {
        IsInitiator = initiator;
        _static = staticKey;
        _fixedEphemeral = fixedEphemeral;
        _symmetric = new SymmetricState(protocolName is null ? ProtocolNameBytes : Encoding.ASCII.GetBytes(protocolName));
        _symmetric.MixHash(prologue);
    }

    public bool IsInitiator { get; }

    public bool IsCompleted => _step == 3;

    /// <summary>True when the next step is ours to write.</summary>
    public bool IsMyTurn => !IsCompleted && ((_step % 2 == 0) == IsInitiator);

    /// <summary>The remote static X25519 key, known after message 2 (initiator) or 3 (responder).</summary>
    public ReadOnlySpan<byte> RemoteStaticPublicKey =>
        (IsInitiator ? _step >= 2 : _step >= 3) ? _remoteStatic : throw new InvalidOperationException("The remote static key is not known yet.");

    public ReadOnlySpan<byte> HandshakeHash => _symmetric.HandshakeHash;

    /// <summary>Largest payload that fits into message number <paramref name="step"/> (0-based).</summary>
    public static int MaxPayloadLength(int step) => step switch
    {
        0 => MaxMessageLength - DhLength,
        1 => MaxMessageLength - DhLength - DhLength - TagLength - TagLength,
        _ => MaxMessageLength - DhLength - TagLength - TagLength,
    };

    /// <summary>Overhead of message <paramref name="step"/> around its payload.</summary>
    public static int Overhead(int step) => step switch
    {
        0 => DhLength,
        1 => DhLength + DhLength + TagLength + TagLength,
        _ => DhLength + TagLength + TagLength,
    };

    /// <summary>Writes the next handshake message into <paramref name="message"/>; returns its length.</summary>
    public int WriteMessage(ReadOnlySpan<byte> payload, Span<byte> message)
    {
        EnsureUsable();
        if (!IsMyTurn)
        {
            throw new InvalidOperationException("It is not this side's turn to write.");
        }
        if (payload.Length > MaxPayloadLength(_step))
        {
            throw new ArgumentException("The handshake payload is too large.", nameof(payload));
        }
        if (message.Length < payload.Length + Overhead(_step))
        {
            throw new ArgumentException("The message buffer is too small.", nameof(message));
        }
        var offset = 0;
        Span<byte> dh = stackalloc byte[DhLength];
        try
        {
            switch (_step)
            {
                case 0: // -> e
                    offset += WriteEphemeral(message);
                    break;
                case 1: // <- e, ee, s, es
                    offset += WriteEphemeral(message);
                    DhOrThrow(_ephemeral!, _remoteEphemeral, dh);
                    offset += _symmetric.EncryptAndHash(_static.PublicKey, message[offset..]);
                    DhOrThrow(_static, _remoteEphemeral, dh);
                    break;
                case 2: // -> s, se
                    offset += _symmetric.EncryptAndHash(_static.PublicKey, message[offset..]);
                    DhOrThrow(_static, _remoteEphemeral, dh);
                    break;
            }
            offset += _symmetric.EncryptAndHash(payload, message[offset..]);
            _step++;
            return offset;
        }
        catch
        {
            _failed = true;
            throw;
        }
    }

    /// <summary>
    /// Reads the next handshake message; false (and the handshake is dead) if it is malformed or fails authentication.
    /// <paramref name="payload"/> must hold at least the message length.
    /// </summary>
    public bool TryReadMessage(ReadOnlySpan<byte> message, Span<byte> payload, out int payloadLength)
    {
        EnsureUsable();
        payloadLength = 0;
        if (IsMyTurn || IsCompleted)
        {
            throw new InvalidOperationException("It is not this side's turn to read.");
        }
        if (message.Length > MaxMessageLength || message.Length < Overhead(_step) || payload.Length < message.Length)
        {
            _failed = true;
            return false;
        }
        var offset = 0;
        Span<byte> dh = stackalloc byte[DhLength];
        var ok = true;
        switch (_step)
        {
            case 0: // -> e
                offset += ReadEphemeral(message);
                break;
            case 1: // <- e, ee, s, es
                offset += ReadEphemeral(message);
                ok = Dh(_ephemeral!, _remoteEphemeral, dh)
                    && _symmetric.TryDecryptAndHash(message.Slice(offset, DhLength + TagLength), _remoteStatic, out _)
                    && Dh(_ephemeral!, _remoteStatic, dh);
                offset += DhLength + TagLength;
                break;
            case 2: // -> s, se
                ok = _symmetric.TryDecryptAndHash(message.Slice(offset, DhLength + TagLength), _remoteStatic, out _)
                    && Dh(_ephemeral!, _remoteStatic, dh);
                offset += DhLength + TagLength;
                break;
        }
        if (!ok || !_symmetric.TryDecryptAndHash(message[offset..], payload, out payloadLength))
        {
            _failed = true;
            payloadLength = 0;
            return false;
        }
        _step++;
        return true;
    }

    /// <summary>Ends the handshake: returns the transport keys and wipes everything else.</summary>
    public TransportState Split()
    {
        EnsureUsable();
        if (!IsCompleted)
        {
            throw new InvalidOperationException("The handshake is not complete.");
        }
        var (first, second) = _symmetric.Split();
        var hash = _symmetric.HandshakeHash.ToArray();
        var transport = IsInitiator ? new TransportState(first, second, hash) : new TransportState(second, first, hash);
        Dispose();
        return transport;
    }

    private int WriteEphemeral(Span<byte> message)
    {
        _ephemeral = _fixedEphemeral ?? X25519KeyPair.Generate();
        _ephemeral.PublicKey.CopyTo(message);
        _symmetric.MixHash(_ephemeral.PublicKey);
        return DhLength;
    }

    private int ReadEphemeral(ReadOnlySpan<byte> message)
    {
        message[..DhLength].CopyTo(_remoteEphemeral);
        _symmetric.MixHash(_remoteEphemeral);
        return DhLength;
    }

    private void DhOrThrow(X25519KeyPair local, ReadOnlySpan<byte> remote, Span<byte> scratch)
    {
        if (!Dh(local, remote, scratch))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the remote ephemeral key is invalid");
        }
    }

    private bool Dh(X25519KeyPair local, ReadOnlySpan<byte> remote, Span<byte> scratch)
    {
        try
        {
            if (!local.TryAgree(remote, scratch))
            {
                return false;
            }
            _symmetric.MixKey(scratch);
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(scratch);
        }
    }

    private void EnsureUsable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_failed)
        {
            throw new InvalidOperationException("The handshake already failed.");
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _symmetric.Dispose();
        _ephemeral?.Dispose();
        _fixedEphemeral?.Dispose();
        CryptographicOperations.ZeroMemory(_remoteEphemeral);
        CryptographicOperations.ZeroMemory(_remoteStatic);
    }
}
