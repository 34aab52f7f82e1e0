//! Block codes (Reed-Solomon, RaptorQ) behind the pipeline.
//!
//! A block is closed by `repair(count)`: its symbol size is the longest
//! framed ADU in it (so small packets get small repair symbols), its source
//! count is however many ADUs it holds, and both travel in every repair
//! header, so the receiver learns the block's shape from any one repair.

use std::collections::VecDeque;

use bytes::{Buf, Bytes};

use super::wire::{self, Header, ADU_INFO_LEN};
use super::{Adu, Counters, Recovered};
use crate::gf256::{self, MatrixKernel};
use crate::raptorq::{
    BlockDecoder as RaptorqDecoder, BlockEncoder as RaptorqEncoder, EncodingPacket,
    EncodingPlanCache, Generator, PayloadId, Schedule, MAX_GENERATOR_SOURCE_SYMBOLS,
};
use crate::recent::Recent;
use crate::rs::matrix::Matrix;
use crate::rs::ReedSolomon;
use crate::Error;

/// Which block code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Code {
    ReedSolomon,
    RaptorQ,
}

/// Reed-Solomon codes by shape. Building one inverts a k x k matrix, far
/// more work than encoding a block, and blocks mostly repeat a few shapes.
#[derive(Default)]
struct RsCache {
    codes: Recent<(usize, usize), ReedSolomon>,
}

impl RsCache {
    fn code(&mut self, data: usize, parity: usize) -> Result<&ReedSolomon, Error> {
        let code = self
            .codes
            .get_or_try_insert((data, parity), || ReedSolomon::new(data, parity))?;
        Ok(code)
    }
}

pub(super) struct BlockEncoder {
    code: Code,
    max_data: usize,
    block_len: usize,
    max_repair: usize,
    symbol_size: usize,
    /// The current block's source symbols, `stride` bytes apart. It grows
    /// (doubling) with the symbols of the largest block so far, never to
    /// `max_data` symbols up front, and is reused block after block.
    arena: Vec<u8>,
    /// Distance between source symbols in `arena`: the previous block's
    /// symbol size (so a RaptorQ block is already contiguous when sizes
    /// repeat), widened to E when a longer ADU comes.
    stride: usize,
    /// Framed length of each symbol of the current block.
    framed: Vec<u16>,
    count: usize,
    block: u16,
    codes: RsCache,
    /// RaptorQ up to [`MAX_GENERATOR_SOURCE_SYMBOLS`]: the kernels applying
    /// the generator rows, by (K, repair count).
    kernels: Recent<(usize, usize), MatrixKernel>,
    /// RaptorQ by [`Schedule`]: the kernels of its dense rows, by (K,
    /// repair count), and its scratch symbols.
    schedule_kernels: Recent<(usize, usize), MatrixKernel>,
    schedule_work: Vec<u8>,
    /// RaptorQ beyond: the crate's encoding plans by K.
    plans: EncodingPlanCache,
}

impl BlockEncoder {
    pub(super) fn new(code: Code, max_data: usize, max_repair: usize, symbol_size: usize) -> Self {
        BlockEncoder {
            code,
            max_data,
            block_len: max_data,
            max_repair,
            symbol_size,
            arena: Vec::new(),
            stride: symbol_size,
            framed: Vec::new(),
            count: 0,
            block: 0,
            codes: RsCache::default(),
            kernels: Recent::default(),
            schedule_kernels: Recent::default(),
            schedule_work: Vec::new(),
            plans: EncodingPlanCache::new(),
        }
    }

    pub(super) fn pending(&self) -> usize {
        self.count
    }

    pub(super) fn set_block_len(&mut self, len: usize) -> Result<(), Error> {
        if len == 0 || len > self.max_data {
            return Err(Error::PipelineConfig {
                reason: "block length must be 1..=the scheme's data symbols",
            });
        }
        self.block_len = len;
        Ok(())
    }

    pub(super) fn protect(&mut self, flow: u8, adu: &[u8]) -> Result<Header, Error> {
        if self.count >= self.block_len {
            return Err(Error::PipelineBlockFull {
                data: self.block_len,
            });
        }
        let framed = ADU_INFO_LEN + adu.len();
        if framed > self.symbol_size {
            return Err(Error::PipelineAduTooLong {
                len: adu.len(),
                max: self.symbol_size - ADU_INFO_LEN,
            });
        }
        if framed > self.stride {
            self.widen();
        }
        let index = self.count;
        if self.arena.len() < (index + 1) * self.stride {
            // `resize` grows the capacity geometrically.
            self.arena.resize((index + 1) * self.stride, 0);
        }
        if self.framed.len() <= index {
            self.framed.resize(index + 1, 0);
        }
        let slot = &mut self.arena[index * self.stride..(index + 1) * self.stride];
        wire::frame_symbol(slot, flow, adu)?;
        // Whatever an earlier block left in the padding must read as zeros.
        slot[framed..].fill(0);
        self.framed[index] = framed as u16;
        self.count += 1;
        Ok(match self.code {
            Code::ReedSolomon => Header::RsSource {
                flow,
                block: self.block,
                index: index as u8,
            },
            Code::RaptorQ => Header::RaptorqSource {
                flow,
                block: self.block as u8,
                esi: index as u32,
            },
        })
    }

    /// Moves the block's symbols to stride E (last first: each lands at or
    /// after where it was) and zeroes their new padding.
    fn widen(&mut self) {
        let (old, new) = (self.stride, self.symbol_size);
        if self.arena.len() < self.count * new {
            self.arena.resize(self.count * new, 0);
        }
        for index in (1..self.count).rev() {
            self.arena
                .copy_within(index * old..(index + 1) * old, index * new);
        }
        for index in 0..self.count {
            self.arena[index * new + old..(index + 1) * new].fill(0);
        }
        self.stride = new;
    }

    pub(super) fn repair(&mut self, count: usize, out: &mut Vec<Bytes>) -> Result<usize, Error> {
        if count > self.max_repair {
            return Err(Error::PipelineRepairCount {
                requested: count,
                max: self.max_repair,
            });
        }
        let k = self.count;
        if k == 0 {
            return Ok(0);
        }
        let size = self.framed[..k]
            .iter()
            .copied()
            .max()
            .map_or(ADU_INFO_LEN, usize::from);
        if count > 0 {
            match self.code {
                Code::ReedSolomon => self.rs_repair(k, count, size, out)?,
                Code::RaptorQ => self.raptorq_repair(k, count, size, out)?,
            }
        }
        self.count = 0;
        self.stride = size;
        self.block = match self.code {
            Code::ReedSolomon => self.block.wrapping_add(1),
            Code::RaptorQ => u16::from((self.block as u8).wrapping_add(1)),
        };
        Ok(count)
    }

    fn rs_repair(
        &mut self,
        k: usize,
        count: usize,
        size: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Error> {
        let block = self.block;
        let (data, mut packets) =
            parity_packets(&self.arena, self.stride, k, count, size, |index| {
                Header::RsRepair {
                    block,
                    data: k as u8,
                    parity: count as u8,
                    index: index as u8,
                }
            });
        let mut parity = packets.payloads();
        self.codes.code(k, count)?.encode_sep(&data, &mut parity)?;
        out.extend(packets.into_bytes());
        Ok(())
    }

    fn raptorq_repair(
        &mut self,
        k: usize,
        count: usize,
        size: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<(), Error> {
        let sbn = self.block as u8;
        let header = |index: usize| Header::RaptorqRepair {
            source_symbols: k as u16,
            block: sbn,
            esi: (k + index) as u32,
        };
        let engine = gf256::engine();
        let schedule = if k as u32 <= MAX_GENERATOR_SOURCE_SYMBOLS
            && count as u32 <= Schedule::SHARED_REPAIRS
        {
            Some(Schedule::shared(k as u32)?)
        } else {
            None
        };
        if let Some(schedule) = schedule
            .as_ref()
            .filter(|s| !by_rows(k, count) || s.beats_rows(count, engine.backend()))
        {
            // The intermediate symbols by fec-core's own schedule, the
            // repairs straight into the packets: the crate's bytes.
            let repairs: Vec<u32> = (0..count as u32).collect();
            let kernel = self.schedule_kernels.get_or_try_insert((k, count), || {
                schedule
                    .kernel(&repairs, engine)
                    .ok_or(Error::PipelineInconsistent {
                        reason: "RaptorQ schedule holds fewer repairs than asked",
                    })
            })?;
            let kernel: &MatrixKernel = kernel;
            let (data, mut packets) =
                parity_packets(&self.arena, self.stride, k, count, size, header);
            schedule.encode(
                engine,
                kernel,
                &repairs,
                &data,
                &mut packets.payloads(),
                &mut self.schedule_work,
            )?;
            out.extend(packets.into_bytes());
            return Ok(());
        }
        if by_rows(k, count) {
            // Repair symbol = generator rows x source symbols, straight
            // into the packets: the same bytes as the crate's encoder.
            // The schedule keeps the rows of the repairs it prepares.
            let kernel = self.kernels.get_or_try_insert((k, count), || {
                let prepared = schedule.as_ref().and_then(|s| s.generator_rows(count));
                let rows = match prepared {
                    Some(rows) => rows.to_vec(),
                    None => Generator::shared(k as u32)?.repair_rows(0, count as u32)?,
                };
                Ok::<_, Error>(engine.prepare(&rows, count, k))
            })?;
            let kernel: &MatrixKernel = kernel;
            let (data, mut packets) =
                parity_packets(&self.arena, self.stride, k, count, size, header);
            kernel.apply(&data, &mut packets.payloads());
            out.extend(packets.into_bytes());
            return Ok(());
        }
        // The raptorq crate wants the block contiguous, and slots are E
        // apart: when the block's symbols are shorter, slide them together
        // in place (ascending order never overwrites a symbol not yet moved).
        if size < self.stride {
            for index in 1..k {
                let from = index * self.stride;
                self.arena.copy_within(from..from + size, index * size);
            }
        }
        let plan = self.plans.plan(k as u32)?;
        let encoder = RaptorqEncoder::with_plan(sbn, size as u16, &self.arena[..k * size], plan)?;
        out.reserve(count);
        encoder.for_each_repair(0, count as u32, |esi, symbol| {
            let header = header((esi as usize) - k).encode();
            let mut bytes = Vec::with_capacity(header.len() + size + super::PACKET_TAILROOM);
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(symbol);
            out.push(Bytes::from(bytes));
        })?;
        Ok(())
    }
}

/// The block's `k` symbols of `size` bytes, and `count` repair packets
/// with their headers written and room for a symbol each.
fn parity_packets(
    arena: &[u8],
    stride: usize,
    k: usize,
    count: usize,
    size: usize,
    header: impl Fn(usize) -> Header,
) -> (Vec<&[u8]>, RepairPackets) {
    let packets = (0..count)
        .map(|index| {
            let header = header(index).encode();
            let mut packet = Vec::with_capacity(header.len() + size + super::PACKET_TAILROOM);
            packet.extend_from_slice(&header);
            packet.resize(header.len() + size, 0);
            packet
        })
        .collect();
    let data = arena
        .chunks_exact(stride)
        .take(k)
        .map(|slot| &slot[..size])
        .collect();
    (data, RepairPackets { packets, size })
}

/// Whether a RaptorQ block of `k` sources may code `rows` repairs (or lost
/// sources) through K-wide generator rows: the rows' kernel then holds at
/// most [`MAX_COEFFICIENTS`] (128 KiB of GFNI tables, 512 KiB of nibble
/// tables on the other backends). Bigger shapes take fec-core's schedule
/// (up to [`MAX_GENERATOR_SOURCE_SYMBOLS`] sources) or the crate's.
fn by_rows(k: usize, rows: usize) -> bool {
    k as u32 <= MAX_GENERATOR_SOURCE_SYMBOLS && k * rows <= MAX_COEFFICIENTS
}

/// Most coefficients of a row kernel, and of a decode's inverse (128 x 128).
const MAX_COEFFICIENTS: usize = 1 << 14;

/// Repair packets being filled: each a header then `size` bytes of symbol.
struct RepairPackets {
    packets: Vec<Vec<u8>>,
    size: usize,
}

impl RepairPackets {
    /// The symbol part of each packet.
    fn payloads(&mut self) -> Vec<&mut [u8]> {
        self.packets
            .iter_mut()
            .map(|packet| {
                let header_len = packet.len() - self.size;
                &mut packet[header_len..]
            })
            .collect()
    }

    fn into_bytes(self) -> impl Iterator<Item = Bytes> {
        self.packets.into_iter().map(Bytes::from)
    }
}

/// A received source of a block not decoded yet.
struct HeldSource {
    index: u32,
    flow: u8,
    adu: Bytes,
}

/// The receiving side's view of one block. Its memory follows the packets
/// it holds, never the scheme's block size: a block that got one packet
/// (a peer's first, or a spoofed one) costs about that packet.
struct RxBlock {
    id: u16,
    /// One bit per source index, set once the source is received or
    /// recovered; words are added as higher indices come.
    present: Vec<u64>,
    /// The received sources, in arrival order, until the block is complete.
    held: Vec<HeldSource>,
    /// One past the highest source index received or recovered.
    extent: usize,
    known: usize,
    /// Data symbols, repair count (RS) or max repairs (RaptorQ), symbol size.
    shape: Option<(usize, usize, usize)>,
    repairs: Vec<(u32, Bytes)>,
    raptorq: Option<RaptorqDecoder>,
    complete: bool,
}

impl RxBlock {
    /// An empty block, its vectors taken from `spare` (empty, with room)
    /// when there are some.
    fn new(id: u16, spare: &mut Spare) -> Self {
        RxBlock {
            id,
            present: spare.present.pop().unwrap_or_default(),
            held: spare.held.pop().unwrap_or_default(),
            extent: 0,
            known: 0,
            shape: None,
            repairs: spare.repairs.pop().unwrap_or_default(),
            raptorq: None,
            complete: false,
        }
    }

    fn missing(&self) -> usize {
        // Without a repair to tell the block's size, the sources seen so
        // far bound it.
        let expected = self.shape.map_or(self.extent, |s| s.0);
        expected.saturating_sub(self.known)
    }

    /// Whether source `index` was received or recovered.
    fn is_present(&self, index: usize) -> bool {
        self.present
            .get(index / 64)
            .is_some_and(|word| word >> (index % 64) & 1 == 1)
    }

    /// Records source `index` as received or recovered.
    fn set_present(&mut self, index: usize) {
        if self.present.len() <= index / 64 {
            self.present.resize(index / 64 + 1, 0);
        }
        self.present[index / 64] |= 1 << (index % 64);
        self.known += 1;
        self.extent = self.extent.max(index + 1);
    }

    /// Marks the block complete: its sources and repairs are let go (their
    /// vectors go to `spare`), only which indices came is kept.
    fn finish(&mut self, spare: &mut Spare) {
        self.complete = true;
        spare.keep_held(std::mem::take(&mut self.held));
        spare.keep_repairs(std::mem::take(&mut self.repairs));
        self.raptorq = None;
    }

    /// Gives every vector of a block that leaves the decoder to `spare`.
    fn recycle(mut self, spare: &mut Spare) {
        spare.keep_held(std::mem::take(&mut self.held));
        spare.keep_repairs(std::mem::take(&mut self.repairs));
        if spare.present.len() < Spare::KEPT && self.present.capacity() > 0 {
            self.present.clear();
            spare.present.push(self.present);
        }
    }
}

/// Emptied vectors of blocks that are done, for the next blocks to fill:
/// a stream of blocks allocates no bookkeeping per block once warm, and
/// memory still follows what is held (a few vectors are kept, each no
/// larger than a block that was held).
#[derive(Default)]
struct Spare {
    present: Vec<Vec<u64>>,
    held: Vec<Vec<HeldSource>>,
    repairs: Vec<Vec<(u32, Bytes)>>,
    /// Scratch symbols of [`Schedule::encode`].
    schedule_work: Vec<u8>,
}

impl Spare {
    /// Vectors kept of each kind: enough for a stream whose blocks
    /// overlap by one (the next block starts before the last completes).
    const KEPT: usize = 2;

    fn keep_held(&mut self, mut held: Vec<HeldSource>) {
        if self.held.len() < Self::KEPT && held.capacity() > 0 {
            // Clearing drops the packets held.
            held.clear();
            self.held.push(held);
        }
    }

    fn keep_repairs(&mut self, mut repairs: Vec<(u32, Bytes)>) {
        if self.repairs.len() < Self::KEPT && repairs.capacity() > 0 {
            repairs.clear();
            self.repairs.push(repairs);
        }
    }
}

pub(super) struct BlockDecoder {
    code: Code,
    max_data: usize,
    max_repair: usize,
    symbol_size: usize,
    max_blocks: usize,
    blocks: VecDeque<RxBlock>,
    spare: Spare,
    codes: RsCache,
}

enum Lookup {
    Live(usize),
    Late,
}

impl BlockDecoder {
    pub(super) fn new(
        code: Code,
        max_data: usize,
        max_repair: usize,
        symbol_size: usize,
        max_blocks: usize,
    ) -> Self {
        BlockDecoder {
            code,
            max_data,
            max_repair,
            symbol_size,
            max_blocks,
            blocks: VecDeque::new(),
            spare: Spare::default(),
            codes: RsCache::default(),
        }
    }

    /// Signed distance from `b` to `a` in the wrapping block-id space.
    fn distance(&self, a: u16, b: u16) -> i32 {
        match self.code {
            Code::ReedSolomon => i32::from(a.wrapping_sub(b) as i16),
            Code::RaptorQ => i32::from((a as u8).wrapping_sub(b as u8) as i8),
        }
    }

    /// Finds or makes the block `id`; evicts blocks that fall out of the live
    /// range, counting their missing sources as unrecoverable.
    fn lookup(&mut self, id: u16, counters: &mut Counters) -> Lookup {
        let newest = match self.blocks.back() {
            None => {
                self.blocks.push_back(RxBlock::new(id, &mut self.spare));
                return Lookup::Live(0);
            }
            Some(block) => block.id,
        };
        let ahead = self.distance(id, newest);
        if ahead == 0 {
            return Lookup::Live(self.blocks.len() - 1);
        }
        if ahead > 0 {
            self.blocks.push_back(RxBlock::new(id, &mut self.spare));
            while self
                .blocks
                .front()
                .is_some_and(|front| self.distance(id, front.id) >= self.max_blocks as i32)
            {
                if let Some(evicted) = self.blocks.pop_front() {
                    if !evicted.complete {
                        counters.unrecoverable += evicted.missing() as u64;
                    }
                    evicted.recycle(&mut self.spare);
                }
            }
            return Lookup::Live(self.blocks.len() - 1);
        }
        if -ahead >= self.max_blocks as i32 {
            return Lookup::Late;
        }
        // Within the live range: find it, or insert it in order.
        let position = self
            .blocks
            .iter()
            .position(|b| self.distance(b.id, id) >= 0)
            .unwrap_or(self.blocks.len());
        if self.blocks.get(position).is_some_and(|b| b.id == id) {
            return Lookup::Live(position);
        }
        self.blocks
            .insert(position, RxBlock::new(id, &mut self.spare));
        Lookup::Live(position)
    }

    /// Takes a packet whose header says `header`, its payload starting at
    /// `payload_at`. The packet is taken by value so its payload becomes the
    /// ADU (or repair symbol) handle itself, without another reference count.
    pub(super) fn receive(
        &mut self,
        header: Header,
        mut packet: Bytes,
        payload_at: usize,
        counters: &mut Counters,
        recovered: &mut Recovered,
    ) -> Result<Option<Adu>, Error> {
        packet.advance(payload_at);
        let payload = packet;
        match header {
            Header::RsSource { flow, block, index } => self.source(
                block,
                usize::from(index),
                flow,
                payload,
                counters,
                recovered,
            ),
            Header::RaptorqSource { flow, block, esi } => self.source(
                u16::from(block),
                esi as usize,
                flow,
                payload,
                counters,
                recovered,
            ),
            Header::RsRepair {
                block,
                data,
                parity,
                index,
            } => {
                let shape = (usize::from(data), usize::from(parity), payload.len());
                self.repair(block, shape, u32::from(index), payload, counters, recovered)
            }
            Header::RaptorqRepair {
                source_symbols,
                block,
                esi,
            } => {
                let shape = (usize::from(source_symbols), self.max_repair, payload.len());
                self.repair(u16::from(block), shape, esi, payload, counters, recovered)
            }
            _ => Err(Error::PipelineInconsistent {
                reason: "header of another scheme",
            }),
        }
    }

    fn source(
        &mut self,
        id: u16,
        index: usize,
        flow: u8,
        adu: Bytes,
        counters: &mut Counters,
        recovered: &mut Recovered,
    ) -> Result<Option<Adu>, Error> {
        let adu_len = adu.len();
        if index >= self.max_data {
            return Err(Error::PipelineInconsistent {
                reason: "source index beyond the scheme's block size",
            });
        }
        if ADU_INFO_LEN + adu_len > self.symbol_size {
            return Err(Error::PipelineAduTooLong {
                len: adu_len,
                max: self.symbol_size - ADU_INFO_LEN,
            });
        }
        let position = match self.lookup(id, counters) {
            Lookup::Late => {
                counters.late += 1;
                return Ok(Some(Adu { flow, data: adu }));
            }
            Lookup::Live(position) => position,
        };
        let block = &mut self.blocks[position];
        if let Some((data, _, size)) = block.shape {
            if index >= data || ADU_INFO_LEN + adu_len > size {
                return Err(Error::PipelineInconsistent {
                    reason: "source does not fit its block's shape",
                });
            }
        }
        if block.is_present(index) {
            counters.duplicates += 1;
            return Ok(None);
        }
        block.set_present(index);
        if !block.complete {
            block.held.push(HeldSource {
                index: index as u32,
                flow,
                adu: adu.clone(),
            });
        }
        if let (Some(decoder), false) = (block.raptorq.as_mut(), block.complete) {
            let symbol = wire::framed_symbol(flow, &adu, decoder.symbol_size().into())?;
            decoder.add(EncodingPacket::new(
                PayloadId::new(id as u8, index as u32),
                symbol,
            ))?;
        }
        // The ADU is good whatever decoding makes of the block: hand it out,
        // and count a failed decode (garbage took part) as a rejection.
        if self.try_decode(position, counters, recovered).is_err() {
            counters.rejected += 1;
        }
        Ok(Some(Adu { flow, data: adu }))
    }

    fn repair(
        &mut self,
        id: u16,
        shape: (usize, usize, usize),
        index: u32,
        payload: Bytes,
        counters: &mut Counters,
        recovered: &mut Recovered,
    ) -> Result<Option<Adu>, Error> {
        let (data, repairs, size) = shape;
        if data > self.max_data || repairs > self.max_repair {
            return Err(Error::PipelineInconsistent {
                reason: "block shape beyond the scheme's",
            });
        }
        if !(ADU_INFO_LEN..=self.symbol_size).contains(&size) {
            return Err(Error::PipelinePayloadLength {
                expected: self.symbol_size,
                got: size,
            });
        }
        let position = match self.lookup(id, counters) {
            Lookup::Late => {
                counters.late += 1;
                return Ok(None);
            }
            Lookup::Live(position) => position,
        };
        let block = &mut self.blocks[position];
        match block.shape {
            Some(known) if known != shape => {
                return Err(Error::PipelineInconsistent {
                    reason: "repair disagrees with its block's shape",
                });
            }
            Some(_) => {}
            None => {
                // A block gets its shape before it can complete, so every
                // source it has seen is still held.
                let fits = block.held.iter().all(|source| {
                    (source.index as usize) < data && ADU_INFO_LEN + source.adu.len() <= size
                });
                if !fits {
                    return Err(Error::PipelineInconsistent {
                        reason: "repair shape excludes sources already received",
                    });
                }
                block.shape = Some(shape);
            }
        }
        if block.complete {
            // Decoded, or every source came: nothing left to rebuild.
            counters.unneeded += 1;
            return Ok(None);
        }
        if block.repairs.iter().any(|(i, _)| *i == index) {
            counters.duplicates += 1;
            return Ok(None);
        }
        if block.repairs.len() >= repairs {
            return Err(Error::PipelineInconsistent {
                reason: "more repair symbols than the block announced",
            });
        }
        if block.known >= data {
            // Every source is held: the block completes without this repair
            // being kept or looked at.
            counters.unneeded += 1;
            block.finish(&mut self.spare);
            return Ok(None);
        }
        if let Some(decoder) = block.raptorq.as_mut() {
            decoder.add(EncodingPacket::new(
                PayloadId::new(id as u8, index),
                payload.to_vec(),
            ))?;
        }
        block.repairs.push((index, payload));
        self.try_decode(position, counters, recovered)?;
        Ok(None)
    }

    fn try_decode(
        &mut self,
        position: usize,
        counters: &mut Counters,
        recovered: &mut Recovered,
    ) -> Result<(), Error> {
        let code = self.code;
        let block = &mut self.blocks[position];
        let spare = &mut self.spare;
        let Some((data, parity, size)) = block.shape else {
            return Ok(());
        };
        if block.complete {
            return Ok(());
        }
        if block.known >= data {
            block.finish(spare);
            return Ok(());
        }
        if block.known + block.repairs.len() < data {
            return Ok(());
        }
        match code {
            Code::ReedSolomon => {
                let mut shards: Vec<Option<Vec<u8>>> = vec![None; data + parity];
                for source in &block.held {
                    shards[source.index as usize] =
                        Some(wire::framed_symbol(source.flow, &source.adu, size)?);
                }
                for (index, payload) in &block.repairs {
                    shards[data + *index as usize] = Some(payload.to_vec());
                }
                self.codes
                    .code(data, parity)?
                    .reconstruct_data(&mut shards)?;
                let mut found = Vec::new();
                for (index, shard) in shards.into_iter().take(data).enumerate() {
                    if block.is_present(index) {
                        continue;
                    }
                    let symbol = Bytes::from(shard.ok_or(Error::PipelineInconsistent {
                        reason: "decoder left a gap",
                    })?);
                    found.push((index, symbol));
                }
                deliver(block, found, counters, recovered, spare)
            }
            Code::RaptorQ => {
                let missing = data - block.known;
                // At most 128 lost for fec-core's own solves (an inverse of
                // at most 128 x 128, as for the rows); more go to the crate.
                if block.raptorq.is_none()
                    && data as u32 <= MAX_GENERATOR_SOURCE_SYMBOLS
                    && missing * missing <= MAX_COEFFICIENTS
                {
                    // The schedule (with the generator rows of its repairs)
                    // is built only when that costs no more than the
                    // crate's own work on this block, so a peer announcing
                    // ever new K with short symbols does not make the
                    // receiver do more work. Building costs about 4x the
                    // crate's decode of K symbols of K bytes (0.8 ms
                    // against 0.4 at K = 200, 7 ms against 2.2 at K = 1024),
                    // hence symbols of at least 4K bytes.
                    let schedule = match Schedule::cached(data as u32) {
                        Some(schedule) => Some(schedule),
                        None if 4 * data <= size => Some(Schedule::shared(data as u32)?),
                        None => None,
                    };
                    if let Some(schedule) = schedule {
                        let backend = gf256::engine().backend();
                        let found = if !by_rows(data, missing)
                            || schedule.beats_rows_decoding(missing, backend)
                        {
                            let work = &mut spare.schedule_work;
                            solve_by_schedule(block, &schedule, data, size, work)?
                        } else {
                            solve_by_rows(block, &schedule, data, size)?
                        };
                        if let Some(found) = found {
                            return deliver(block, found, counters, recovered, spare);
                        }
                    }
                }
                if block.raptorq.is_none() {
                    let mut decoder =
                        RaptorqDecoder::new(block.id as u8, data as u32, size as u16)?;
                    decoder.set_max_repair_symbols(parity);
                    let sbn = block.id as u8;
                    let mut packets = Vec::with_capacity(block.known + block.repairs.len());
                    for source in &block.held {
                        packets.push(EncodingPacket::new(
                            PayloadId::new(sbn, source.index),
                            wire::framed_symbol(source.flow, &source.adu, size)?,
                        ));
                    }
                    packets.extend(block.repairs.iter().map(|(esi, payload)| {
                        EncodingPacket::new(PayloadId::new(sbn, *esi), payload.to_vec())
                    }));
                    // One call: the crate decodes once it holds K symbols,
                    // and looks K's parameters up once rather than per packet.
                    decoder.add_all(packets)?;
                    block.raptorq = Some(decoder);
                }
                if !block
                    .raptorq
                    .as_ref()
                    .is_some_and(RaptorqDecoder::is_decoded)
                {
                    return Ok(());
                }
                let Some(decoded) = block.raptorq.take().and_then(RaptorqDecoder::into_block)
                else {
                    return Ok(());
                };
                let decoded = Bytes::from(decoded);
                let found = (0..data)
                    .filter(|&i| !block.is_present(i))
                    .map(|i| (i, decoded.slice(i * size..(i + 1) * size)))
                    .collect();
                deliver(block, found, counters, recovered, spare)
            }
        }
    }
}

/// Rebuilds a RaptorQ block's lost sources from as many of its repairs
/// through the code's generator rows the [`Schedule`] keeps (the same as
/// [`Generator`] reads off the crate): with `n` sources lost and the rows
/// of `n` repairs, `repair_j - sum over received i of row_j[i] * source_i =
/// sum over lost i of row_j[i] * source_i`, an `n x n` system solved by
/// inverting its matrix. `None` when that matrix is singular or a repair
/// is not one the schedule prepares (the crate's decoder then takes the
/// block and waits for more symbols if need be, as it would have).
fn solve_by_rows(
    block: &RxBlock,
    schedule: &Schedule,
    data: usize,
    size: usize,
) -> Result<Option<Vec<(usize, Bytes)>>, Error> {
    let Some(solve) = Solve::new(block, schedule, data) else {
        return Ok(None);
    };
    // Each repair minus what the received sources put in it.
    let mut partial: Vec<Vec<u8>> = solve
        .repairs
        .iter()
        .map(|(_, symbol)| symbol.to_vec())
        .collect();
    if !block.held.is_empty() {
        let symbols = framed_held(block, size)?;
        let mut coefficients = Vec::with_capacity(solve.lost.len() * symbols.len());
        for row in &solve.rows {
            coefficients.extend(block.held.iter().map(|s| row[s.index as usize]));
        }
        gf256::engine()
            .prepare(&coefficients, solve.lost.len(), symbols.len())
            .apply_add(&symbols, &mut partial);
    }
    Ok(Some(apply_inverse(&solve.inverse, &partial, solve.lost)))
}

/// Rebuilds a RaptorQ block's lost sources from as many of its repairs by
/// the block's [`Schedule`]: re-encoding the block with its `n` lost
/// sources taken as zero gives each repair minus what the lost sources put
/// in it, and the schedule's generator rows at the lost positions give the
/// `n x n` matrix of what they put, inverted as in [`solve_by_rows`].
/// `None` when a repair is past those the schedule prepares or the matrix is
/// singular (the crate's decoder then takes the block).
fn solve_by_schedule(
    block: &RxBlock,
    schedule: &Schedule,
    data: usize,
    size: usize,
    work: &mut Vec<u8>,
) -> Result<Option<Vec<(usize, Bytes)>>, Error> {
    let Some(solve) = Solve::new(block, schedule, data) else {
        return Ok(None);
    };
    let engine = gf256::engine();
    let Some(kernel) = schedule.kernel(&solve.numbers, engine) else {
        return Ok(None);
    };
    // The block with its lost sources as zero.
    let framed = framed_held(block, size)?;
    let zero = vec![0u8; size];
    let mut sources: Vec<&[u8]> = vec![&zero; data];
    for (source, symbol) in block.held.iter().zip(&framed) {
        sources[source.index as usize] = symbol;
    }
    let mut partial = vec![vec![0u8; size]; solve.lost.len()];
    schedule.encode(
        engine,
        &kernel,
        &solve.numbers,
        &sources,
        &mut partial,
        work,
    )?;
    for ((_, repair), target) in solve.repairs.iter().zip(&mut partial) {
        engine.xor_slice(repair, target);
    }
    Ok(Some(apply_inverse(&solve.inverse, &partial, solve.lost)))
}

/// What the row and schedule solves share: the lost sources, as many of
/// the block's repairs, their repair numbers (ESI - K) and generator rows,
/// and the inverse of those rows at the lost positions.
struct Solve<'a> {
    lost: Vec<usize>,
    repairs: &'a [(u32, Bytes)],
    numbers: Vec<u32>,
    rows: Vec<&'a [u8]>,
    inverse: Matrix,
}

impl<'a> Solve<'a> {
    /// `None` when the block holds fewer repairs than lost sources, a
    /// repair is not one the schedule prepares, or the rows are singular.
    fn new(block: &'a RxBlock, schedule: &'a Schedule, data: usize) -> Option<Self> {
        // Before the block completes, the sources present are those held.
        let lost: Vec<usize> = (0..data).filter(|&i| !block.is_present(i)).collect();
        let n = lost.len();
        let repairs = block.repairs.get(..n)?;
        let numbers = repairs
            .iter()
            .map(|(esi, _)| esi.checked_sub(data as u32))
            .collect::<Option<Vec<u32>>>()?;
        let rows = numbers
            .iter()
            .map(|&number| schedule.generator_row(number))
            .collect::<Option<Vec<&[u8]>>>()?;
        let square = Matrix::from_fn(n, n, |r, c| rows[r][lost[c]]);
        let inverse = square.inverse(gf256::engine())?;
        Some(Solve {
            lost,
            repairs,
            numbers,
            rows,
            inverse,
        })
    }
}

/// The block's held sources as framed symbols of `size` bytes, in the
/// order held.
fn framed_held(block: &RxBlock, size: usize) -> Result<Vec<Vec<u8>>, Error> {
    block
        .held
        .iter()
        .map(|source| wire::framed_symbol(source.flow, &source.adu, size))
        .collect()
}

/// The lost sources `inverse * partial` of a row or schedule solve, by
/// index.
fn apply_inverse(inverse: &Matrix, partial: &[Vec<u8>], lost: Vec<usize>) -> Vec<(usize, Bytes)> {
    let n = lost.len();
    let solved = gf256::engine()
        .prepare(inverse.entries(), n, n)
        .apply_new(partial);
    lost.into_iter()
        .zip(solved)
        .map(|(index, symbol)| (index, Bytes::from(symbol)))
        .collect()
}

/// Hands out the ADUs of decoded symbols (slices, no copy) and completes the block.
fn deliver(
    block: &mut RxBlock,
    found: Vec<(usize, Bytes)>,
    counters: &mut Counters,
    recovered: &mut Recovered,
    spare: &mut Spare,
) -> Result<(), Error> {
    recovered.queue.reserve(found.len());
    let mut result = Ok(());
    for (index, symbol) in found {
        match wire::parse_symbol(&symbol) {
            Ok((flow, range)) => {
                block.set_present(index);
                recovered.push(
                    counters,
                    Adu {
                        flow,
                        data: symbol.slice(range),
                    },
                );
            }
            Err(error) => result = Err(error),
        }
    }
    block.finish(spare);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row solve and the schedule solve themselves (not the crate's
    /// fallback) rebuild lost sources: a block of 12 with 3 lost and its
    /// first 3 repairs.
    #[test]
    fn rows_solve_a_block() {
        solves_a_block(|block, k, size| {
            let schedule = Schedule::shared(k as u32).unwrap();
            solve_by_rows(block, &schedule, k, size)
        });
    }

    #[test]
    fn schedule_solves_a_block() {
        solves_a_block(|block, k, size| {
            let schedule = Schedule::shared(k as u32).unwrap();
            solve_by_schedule(block, &schedule, k, size, &mut Vec::new())
        });
    }

    type Found = Result<Option<Vec<(usize, Bytes)>>, Error>;

    fn solves_a_block(solve: impl Fn(&RxBlock, usize, usize) -> Found) {
        let (block, size, expected) = received_block(12, &[1, 5, 11], &[0, 1, 2], 0);
        let found = solve(&block, 12, size)
            .unwrap()
            .expect("the rows of the first repairs are not singular here");
        assert_eq!(found, expected);
    }

    /// A received RaptorQ block of `k` sources with `lost` missing and the
    /// repairs numbered `repairs` (in that order) held, from ADUs made of
    /// `seed`; its symbol size and the lost sources' framed symbols.
    fn received_block(
        k: usize,
        lost: &[usize],
        repairs: &[u32],
        seed: usize,
    ) -> (RxBlock, usize, Vec<(usize, Bytes)>) {
        let most = repairs.iter().max().map_or(0, |&r| r as usize + 1);
        let mut encoder = BlockEncoder::new(Code::RaptorQ, k, most.max(1), 64);
        let adus: Vec<Vec<u8>> = (0..k)
            .map(|i| {
                (0..1 + (i * 5 + seed) % 40)
                    .map(|j| (i * 7 + j + seed) as u8)
                    .collect()
            })
            .collect();
        for adu in &adus {
            encoder.protect(2, adu).unwrap();
        }
        let mut packets = Vec::new();
        encoder.repair(most, &mut packets).unwrap();
        let size = ADU_INFO_LEN + adus.iter().map(Vec::len).max().unwrap();

        let mut block = RxBlock::new(0, &mut Spare::default());
        for i in (0..k).filter(|i| !lost.contains(i)) {
            block.set_present(i);
            block.held.push(HeldSource {
                index: i as u32,
                flow: 2,
                adu: Bytes::from(adus[i].clone()),
            });
        }
        for &repair in repairs {
            let packet = &packets[repair as usize];
            let (header, at) = Header::parse(packet).unwrap();
            let Header::RaptorqRepair { esi, .. } = header else {
                panic!("not a repair: {header:?}")
            };
            block.repairs.push((esi, packet.slice(at..)));
        }
        let expected = lost
            .iter()
            .map(|&i| {
                (
                    i,
                    Bytes::from(wire::framed_symbol(2, &adus[i], size).unwrap()),
                )
            })
            .collect();
        (block, size, expected)
    }

    /// The row solve and the schedule solve of random blocks (K up to 60,
    /// random losses, as many repairs drawn from the first 300 in random
    /// order) agree: both rebuild the lost sources, or both decline. They
    /// decline exactly when a repair is past the schedule's 256 or the
    /// repairs' rows at the lost positions, read off the crate
    /// ([`Generator`]), are singular.
    #[test]
    fn row_and_schedule_solves_agree() {
        use rand::rngs::StdRng;
        use rand::seq::index::sample;
        use rand::{Rng, SeedableRng};

        let (mut declined, mut solved) = (0, 0);
        for trial in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(trial);
            let k = rng.gen_range(1..=60usize);
            let lost_count = rng.gen_range(1..=k);
            let mut lost = sample(&mut rng, k, lost_count).into_vec();
            lost.sort_unstable();
            // Mostly among the first 100, now and then past 256.
            let pool = if trial % 5 == 0 { 300 } else { 100 };
            let repairs: Vec<u32> = sample(&mut rng, pool, lost_count)
                .into_iter()
                .map(|r| r as u32)
                .collect();
            let (block, size, expected) = received_block(k, &lost, &repairs, trial as usize);
            let schedule = Schedule::shared(k as u32).unwrap();
            let by_rows = solve_by_rows(&block, &schedule, k, size).unwrap();
            let by_schedule =
                solve_by_schedule(&block, &schedule, k, size, &mut Vec::new()).unwrap();
            assert_eq!(by_rows, by_schedule, "trial {trial}: k={k} lost {lost:?}");
            let generator = Generator::new(k as u32, 300).unwrap();
            let solvable = repairs.iter().all(|&r| r < Schedule::SHARED_REPAIRS) && {
                let square = Matrix::from_fn(lost_count, lost_count, |r, c| {
                    generator.repair_rows(repairs[r], 1).unwrap()[lost[c]]
                });
                square.inverse(gf256::engine()).is_some()
            };
            match by_rows {
                Some(found) => {
                    assert!(solvable, "trial {trial}");
                    assert_eq!(found, expected, "trial {trial}");
                    solved += 1;
                }
                None => {
                    assert!(!solvable, "trial {trial}: declined a solvable block");
                    declined += 1;
                }
            }
        }
        assert!(
            solved > 200 && declined > 10,
            "{solved} solved, {declined} declined"
        );
    }

    /// Repairs named by ESIs below K (sources) or past the schedule are
    /// declined, not misread.
    #[test]
    fn solves_decline_foreign_repairs() {
        let (mut block, size, _) = received_block(12, &[1, 5], &[0, 1], 0);
        let schedule = Schedule::shared(12).unwrap();
        for esi in [3, (1 << 24) - 1] {
            block.repairs[1].0 = esi;
            assert_eq!(solve_by_rows(&block, &schedule, 12, size).unwrap(), None);
            let by_schedule = solve_by_schedule(&block, &schedule, 12, size, &mut Vec::new());
            assert_eq!(by_schedule.unwrap(), None);
        }
    }

    /// The K = 300, 60-repair blocks of `tests/pipeline_raptorq.rs` are
    /// past the row kernel's bound, so the pipeline codes them by the
    /// schedule on every backend.
    #[test]
    fn large_blocks_are_past_the_rows() {
        assert!(!by_rows(300, 60));
        const { assert!(60 * 60 <= MAX_COEFFICIENTS) };
    }
}
