/** L2TPv2 LAC core for the Softwire Initiator (RFC 2661 as profiled by RFC 5571 5.1). */
export * from './avp';
export * from './avps';
export * from './channel';
export * from './errors';
export * from './header';
export * from './lac';
export * from './messages';
export * from './result-codes';
export * from './seq';
