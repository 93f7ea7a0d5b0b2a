using System.Buffers.Binary;
using System.Security.Cryptography;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node.Discovery;

/// <summary>A verified LAN beacon: who (the key is in it, so the Peer ID cannot disagree with the signer) and at which TCP port.</summary>
internal readonly record struct Beacon(PeerId PeerId, ushort Port, long TimestampMs, UInt128 Nonce);

/// <summary>Why a datagram was or was not taken as a beacon.</summary>
internal enum BeaconVerdict
{
    /// <summary>A fresh, correctly signed beacon of another node.</summary>
    Accepted,
    /// <summary>Wrong length, magic or version.</summary>
    Malformed,
    /// <summary>The signature does not verify under the key in the beacon.</summary>
    BadSignature,
    /// <summary>Our own beacon, looped back.</summary>
    Own,
    /// <summary>Timestamp outside the accepted window around now.</summary>
    Stale,
    /// <summary>Not newer than a beacon already accepted from that peer.</summary>
    Replay,
    /// <summary>Too many peers tracked at once; new ones wait until old entries expire.</summary>
    CacheFull,
}

/// <summary>
/// The beacon wire format (version 1, exactly <see cref="Length"/> bytes, big-endian):
/// <c>"SMBc" | version(1) | ed25519 public key(32) | tcp port(2) | unix ms(8) | nonce(16) | signature(64)</c>,
/// the signature by the key over <c>"securemesh-beacon-v1:" || every byte before it</c>.
/// </summary>
internal static class BeaconCodec
{
    /// <summary>The whole datagram.</summary>
    public const int Length = SignedLength + 64;

    /// <summary>Current format version.</summary>
    public const byte Version = 1;

    private const int KeyOffset = 5;
    private const int PortOffset = KeyOffset + PeerId.PublicKeyLength;
    private const int TimeOffset = PortOffset + 2;
    private const int NonceOffset = TimeOffset + 8;
    private const int SignedLength = NonceOffset + 16;

    private static ReadOnlySpan<byte> Magic => "SMBc"u8;

    private static ReadOnlySpan<byte> DomainPrefix => "securemesh-beacon-v1:"u8;

    /// <summary>Builds a signed beacon with a random nonce.</summary>
    public static byte[] Encode(NodeIdentity identity, ushort port, long timestampMs)
    {
        Span<byte> nonce = stackalloc byte[16];
        RandomNumberGenerator.Fill(nonce);
        return Encode(identity, identity.PublicKey, port, timestampMs, nonce);
    }

    /// <summary>Builds a beacon claiming <paramref name="publicKey"/> signed by <paramref name="signer"/> (tests forge with a mismatch).</summary>
    internal static byte[] Encode(NodeIdentity signer, ReadOnlySpan<byte> publicKey, ushort port, long timestampMs, ReadOnlySpan<byte> nonce)
    {
        ArgumentNullException.ThrowIfNull(signer);
        var datagram = new byte[Length];
        Magic.CopyTo(datagram);
        datagram[4] = Version;
        publicKey.CopyTo(datagram.AsSpan(KeyOffset, PeerId.PublicKeyLength));
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(PortOffset), port);
        BinaryPrimitives.WriteInt64BigEndian(datagram.AsSpan(TimeOffset), timestampMs);
        nonce.CopyTo(datagram.AsSpan(NonceOffset, 16));
        Span<byte> signed = stackalloc byte[DomainPrefix.Length + SignedLength];
        DomainPrefix.CopyTo(signed);
        datagram.AsSpan(0, SignedLength).CopyTo(signed[DomainPrefix.Length..]);
        signer.Sign(signed, datagram.AsSpan(SignedLength));
        return datagram;
    }

    /// <summary>
    /// The checks that cost nothing (length, magic, version, a non-zero port, not our own key): only a datagram that
    /// passes them is worth a signature check. Accepted here means "verify it"; never throws.
    /// </summary>
    public static BeaconVerdict Precheck(ReadOnlySpan<byte> datagram, PeerId? self = null)
    {
        if (datagram.Length != Length || !datagram[..4].SequenceEqual(Magic) || datagram[4] != Version
            || BinaryPrimitives.ReadUInt16BigEndian(datagram[PortOffset..]) == 0)
        {
            return BeaconVerdict.Malformed;
        }
        return self is not null && datagram.Slice(KeyOffset, PeerId.PublicKeyLength).SequenceEqual(self.PublicKey)
            ? BeaconVerdict.Own
            : BeaconVerdict.Accepted;
    }

    /// <summary>The timestamp of a datagram that passed <see cref="Precheck"/> (unverified).</summary>
    internal static long UnverifiedTimestamp(ReadOnlySpan<byte> datagram) => BinaryPrimitives.ReadInt64BigEndian(datagram[TimeOffset..]);

    /// <summary>Checks shape and signature; never throws on any input.</summary>
    public static BeaconVerdict TryDecode(ReadOnlySpan<byte> datagram, out Beacon beacon, PeerId? self = null)
    {
        beacon = default;
        if (datagram.Length != Length || !datagram[..4].SequenceEqual(Magic) || datagram[4] != Version)
        {
            return BeaconVerdict.Malformed;
        }
        var key = datagram.Slice(KeyOffset, PeerId.PublicKeyLength);
        if (self is not null && key.SequenceEqual(self.PublicKey))
        {
            return BeaconVerdict.Own;
        }
        Span<byte> signed = stackalloc byte[DomainPrefix.Length + SignedLength];
        DomainPrefix.CopyTo(signed);
        datagram[..SignedLength].CopyTo(signed[DomainPrefix.Length..]);
        if (!NodeIdentity.Verify(key, signed, datagram[SignedLength..]))
        {
            return BeaconVerdict.BadSignature;
        }
        var port = BinaryPrimitives.ReadUInt16BigEndian(datagram[PortOffset..]);
        if (port == 0)
        {
            return BeaconVerdict.Malformed;
        }
        beacon = new Beacon(
            PeerId.FromPublicKey(key),
            port,
            BinaryPrimitives.ReadInt64BigEndian(datagram[TimeOffset..]),
            BinaryPrimitives.ReadUInt128BigEndian(datagram[NonceOffset..]));
        return BeaconVerdict.Accepted;
    }
}

/// <summary>
/// Decides which beacons to act on: well formed, correctly signed, not ours, within ±<c>window</c> of now, and strictly
/// newer than the last one accepted from that peer (so a captured beacon cannot be replayed, even with a new nonce).
/// The per-peer memory is bounded; entries expire once their beacons could no longer pass the time check.
/// </summary>
internal sealed class BeaconValidator
{
    private readonly PeerId _self;
    private readonly TimeProvider _time;
    private readonly TimeSpan _window;
    private readonly int _capacity;
    private readonly Dictionary<PeerId, long> _lastAccepted = [];
    private readonly Lock _lock = new();

    public BeaconValidator(PeerId self, TimeProvider time, TimeSpan? window = null, int capacity = 4096)
    {
        _self = self;
        _time = time;
        _window = window ?? TimeSpan.FromSeconds(60);
        _capacity = capacity;
    }

    /// <summary>How many peers are remembered for replay checks.</summary>
    public int Tracked
    {
        get
        {
            lock (_lock)
            {
                return _lastAccepted.Count;
            }
        }
    }

    /// <summary>
    /// The cheap checks (shape, own key, and the time window on the still unverified timestamp): a datagram failing
    /// them is dropped before any budget is charged or signature checked. Accepted means "worth verifying".
    /// </summary>
    public BeaconVerdict Precheck(ReadOnlySpan<byte> datagram)
    {
        var verdict = BeaconCodec.Precheck(datagram, _self);
        if (verdict != BeaconVerdict.Accepted)
        {
            return verdict;
        }
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = (long)_window.TotalMilliseconds;
        var at = BeaconCodec.UnverifiedTimestamp(datagram);
        return at < now - window || at > now + window ? BeaconVerdict.Stale : BeaconVerdict.Accepted;
    }

    public BeaconVerdict Check(ReadOnlySpan<byte> datagram, out Beacon beacon)
    {
        var verdict = BeaconCodec.TryDecode(datagram, out beacon, _self);
        if (verdict != BeaconVerdict.Accepted)
        {
            return verdict;
        }
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = (long)_window.TotalMilliseconds;
        if (beacon.TimestampMs < now - window || beacon.TimestampMs > now + window)
        {
            return BeaconVerdict.Stale;
        }
        lock (_lock)
        {
            if (_lastAccepted.TryGetValue(beacon.PeerId, out var last))
            {
                if (beacon.TimestampMs <= last)
                {
                    return BeaconVerdict.Replay;
                }
            }
            else if (_lastAccepted.Count >= _capacity)
            {
                // Anything older than the window can no longer be replayed past the time check: forget it.
                foreach (var (peer, at) in _lastAccepted)
                {
                    if (at < now - window)
                    {
                        _lastAccepted.Remove(peer);
                    }
                }
                if (_lastAccepted.Count >= _capacity)
                {
                    return BeaconVerdict.CacheFull;
                }
            }
            _lastAccepted[beacon.PeerId] = beacon.TimestampMs;
        }
        return BeaconVerdict.Accepted;
    }
}
